//! The CLI covers the whole API: every RPC that the service descriptors declare has a command in
//! `kmsim::cli::RPC_COMMANDS`, every entry there names a real RPC and a real command, and every command's help
//! ends with an example.

mod common;

use std::collections::BTreeSet;

use clap::CommandFactory;
use kmsim::cli::{Cli, RPC_COMMANDS};

fn declared_rpcs() -> BTreeSet<String> {
    common::declared_methods().into_iter().map(|(service, method, _)| format!("{service}/{method}")).collect()
}

/// The subcommand a table entry names (`data-key generate --without-plaintext`), checking that it is a leaf and
/// has the flags the entry gives.
fn resolve<'a>(root: &'a clap::Command, entry: &str) -> Result<&'a clap::Command, String> {
    let mut command = root;
    let mut flags = Vec::new();
    for word in entry.split_whitespace() {
        match word.strip_prefix("--") {
            Some(flag) => flags.push(flag),
            None if !flags.is_empty() => return Err(format!("{entry:?}: a subcommand after a flag")),
            None => {
                command = command
                    .find_subcommand(word)
                    .ok_or_else(|| format!("{entry:?}: `{}` has no subcommand {word:?}", command.get_name()))?;
            }
        }
    }
    if command.has_subcommands() {
        return Err(format!("{entry:?} is a group of commands, not a command"));
    }
    for flag in flags {
        if !command.get_arguments().any(|arg| arg.get_long() == Some(flag)) {
            return Err(format!("{entry:?}: the command has no --{flag}"));
        }
    }
    Ok(command)
}

/// Every command that runs something, with its path from the root.
fn leaves(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
        let sub_path = format!("{path} {}", sub.get_name()).trim().to_owned();
        if sub.has_subcommands() {
            leaves(sub, &sub_path, out);
        } else {
            out.push((sub_path, sub.clone()));
        }
    }
}

#[test]
fn every_rpc_has_a_command() {
    let mapped: BTreeSet<&str> = RPC_COMMANDS.iter().map(|(rpc, _)| *rpc).collect();
    let declared = declared_rpcs();
    let missing: Vec<&String> = declared.iter().filter(|rpc| !mapped.contains(rpc.as_str())).collect();
    assert!(missing.is_empty(), "RPCs without a CLI command in kmsim::cli::RPC_COMMANDS: {missing:#?}");
    // Seven services, each with several RPCs: an empty walk must not pass for a complete one.
    let services: BTreeSet<&str> = declared.iter().filter_map(|rpc| rpc.split('/').next()).collect();
    assert_eq!(services.len(), 7, "{services:#?}");
}

#[test]
fn every_entry_names_a_real_rpc() {
    let declared = declared_rpcs();
    let unknown: Vec<&str> = RPC_COMMANDS.iter().map(|(rpc, _)| *rpc).filter(|rpc| !declared.contains(*rpc)).collect();
    assert!(unknown.is_empty(), "entries for RPCs the descriptors do not declare: {unknown:#?}");
    let mut seen = BTreeSet::new();
    let repeated: Vec<_> = RPC_COMMANDS.iter().filter(|entry| !seen.insert(**entry)).collect();
    assert!(repeated.is_empty(), "entries given twice: {repeated:#?}");
}

#[test]
fn every_entry_names_a_real_command() {
    let root = Cli::command();
    let broken: Vec<String> = RPC_COMMANDS.iter().filter_map(|(_, entry)| resolve(&root, entry).err()).collect();
    assert!(broken.is_empty(), "entries whose command does not exist: {broken:#?}");
    // The resolver itself tells a missing command, a group and a missing flag from a real command.
    assert!(resolve(&root, "alias list --key-id").is_ok());
    assert!(resolve(&root, "alias rename").is_err());
    assert!(resolve(&root, "alias").is_err());
    assert!(resolve(&root, "alias list --no-such-flag").is_err());
}

#[test]
fn every_command_has_help_with_an_example() {
    let mut root = Cli::command();
    root.build();
    let mut all = Vec::new();
    leaves(&root, "", &mut all);
    assert!(all.len() > RPC_COMMANDS.len() / 2, "too few commands found: {}", all.len());
    let without: Vec<&str> = all
        .iter()
        .filter(|(_, command)| {
            let after = command.get_after_help().map(ToString::to_string).unwrap_or_default();
            let about = command.get_about().map(ToString::to_string).unwrap_or_default();
            !after.contains("Example") || about.trim().is_empty()
        })
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(without.is_empty(), "commands whose --help has no description or no Example: {without:#?}");
}

#[test]
fn every_client_command_takes_output_and_query() {
    let mut root = Cli::command();
    root.build();
    let mut all = Vec::new();
    leaves(&root, "", &mut all);
    let lacking: Vec<&str> = all
        .iter()
        .filter(|(path, _)| path != "serve")
        .filter(|(_, command)| {
            let longs: Vec<&str> = command.get_arguments().filter_map(|arg| arg.get_long()).collect();
            !longs.contains(&"output") || !longs.contains(&"query")
        })
        .map(|(path, _)| path.as_str())
        .collect();
    assert!(lacking.is_empty(), "client commands without --output or --query: {lacking:#?}");
}
