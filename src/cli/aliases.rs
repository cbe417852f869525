//! `kmsim alias …` and `kmsim tag …`: a key's aliases and tags (KeyManagementService).

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::{Connection, Failure};
use crate::proto as pb;

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Give a key an alias; calls can then name the key as alias/NAME.
    #[command(after_help = "Example:\n  kmsim alias create alias/payments --key-id $KEY\n  \
                            kmsim encrypt --key-id alias/payments --plaintext hello")]
    Create {
        /// The alias, starting with `alias/`.
        alias_name: String,
        /// The key (id or ARN) the alias names.
        #[arg(long)]
        key_id: String,
    },
    /// Point an alias at another key, e.g. to switch an application to a new key without changing it.
    #[command(after_help = "Example:\n  kmsim alias update alias/payments --key-id $NEW_KEY")]
    Update {
        /// The alias, starting with `alias/`.
        alias_name: String,
        /// The key the alias names from now on.
        #[arg(long)]
        key_id: String,
    },
    /// Delete an alias; the key stays.
    #[command(after_help = "Example:\n  kmsim alias delete alias/payments")]
    Delete { alias_name: String },
    /// List aliases: every alias of the region (ListAliases), or those of one key (--key-id, ListAliasesByKeyId).
    #[command(after_help = "Examples:\n  kmsim alias list\n  kmsim alias list --key-id $KEY --output json")]
    List {
        /// Only the aliases of this key (id, ARN or alias).
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long, default_value_t = 1)]
        page_number: i32,
        #[arg(long, default_value_t = 10)]
        page_size: i32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TagCommand {
    /// Tag a key with KEY=VALUE pairs (at most 20 tags per key); prints the key's tags after.
    #[command(after_help = "Example:\n  kmsim tag add alias/payments env=prod team=billing")]
    Add {
        /// The key: id, ARN or alias/NAME.
        key_id: String,
        /// A tag KEY=VALUE; give several at once.
        #[arg(required = true, value_parser = super::secrets::parse_tag, value_name = "KEY=VALUE")]
        tags: Vec<(String, String)>,
    },
    /// Remove tags from a key by their keys; prints the key's tags after.
    #[command(after_help = "Example:\n  kmsim tag remove alias/payments env team")]
    Remove {
        /// The key: id, ARN or alias/NAME.
        key_id: String,
        /// A tag key; give several at once.
        #[arg(required = true, value_name = "TAG_KEY")]
        tag_keys: Vec<String>,
    },
    /// List a key's tags.
    #[command(after_help = "Example:\n  kmsim tag list alias/payments")]
    List {
        /// The key: id, ARN or alias/NAME.
        key_id: String,
    },
}

pub(super) async fn alias(conn: &Connection, command: AliasCommand) -> Result<Value, Failure> {
    let mut kms = conn.kms().await?;
    Ok(match command {
        AliasCommand::Create { alias_name, key_id } => {
            let request = pb::CreateAliasRequest { alias_name: alias_name.clone(), key_id: key_id.clone() };
            kms.create_alias(conn.request(request)).await?;
            json!({ "aliasName": alias_name, "keyId": key_id })
        }
        AliasCommand::Update { alias_name, key_id } => {
            let request = pb::UpdateAliasRequest { alias_name: alias_name.clone(), target_key_id: key_id.clone() };
            kms.update_alias(conn.request(request)).await?;
            json!({ "aliasName": alias_name, "keyId": key_id })
        }
        AliasCommand::Delete { alias_name } => {
            kms.delete_alias(conn.request(pb::DeleteAliasRequest { alias_name: alias_name.clone() })).await?;
            json!({ "aliasName": alias_name, "deleted": true })
        }
        AliasCommand::List { key_id, page_number, page_size } => {
            let response = match key_id {
                Some(key_id) => {
                    let request = pb::ListAliasesByKeyIdRequest { key_id, page_number, page_size };
                    kms.list_aliases_by_key_id(conn.request(request)).await?
                }
                None => kms.list_aliases(conn.request(pb::ListAliasesRequest { page_number, page_size })).await?,
            }
            .into_inner();
            let aliases: Vec<Value> = response
                .aliases
                .into_iter()
                .map(|a| json!({ "aliasName": a.alias_name, "keyId": a.key_id, "aliasArn": a.alias_arn }))
                .collect();
            json!({
                "totalCount": response.total_count,
                "pageNumber": response.page_number,
                "pageSize": response.page_size,
                "aliases": aliases,
            })
        }
    })
}

pub(super) async fn tag(conn: &Connection, command: TagCommand) -> Result<Value, Failure> {
    let mut kms = conn.kms().await?;
    let key_id = match command {
        TagCommand::Add { key_id, tags } => {
            let tags = tags.into_iter().map(|(tag_key, tag_value)| pb::Tag { tag_key, tag_value }).collect();
            kms.tag_resource(conn.request(pb::TagResourceRequest { key_id: key_id.clone(), tags })).await?;
            key_id
        }
        TagCommand::Remove { key_id, tag_keys } => {
            kms.untag_resource(conn.request(pb::UntagResourceRequest { key_id: key_id.clone(), tag_keys })).await?;
            key_id
        }
        TagCommand::List { key_id } => key_id,
    };
    // Adding or removing shows the result, so a mistyped tag key is seen at once.
    let request = pb::ListResourceTagsRequest { key_id: key_id.clone() };
    let tags = kms.list_resource_tags(conn.request(request)).await?.into_inner().tags;
    let tags: Vec<Value> = tags.into_iter().map(|t| json!({ "tagKey": t.tag_key, "tagValue": t.tag_value })).collect();
    Ok(json!({ "keyId": key_id, "tags": tags }))
}
