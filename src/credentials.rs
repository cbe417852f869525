//! An AccessKey (or ClientKey) id with its secret, and the file that holds
//! them: what the CLI signs with and what `--admin-key-file` names. Every
//! front end checks its own wire signatures against these same pairs.

use std::path::Path;

use crate::engine::access::{Secret, new_access_key_pair};

/// An AccessKey (or ClientKey) id and its secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret: Secret,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials { access_key_id: access_key_id.into(), secret: Secret::new(secret.into()) }
    }

    /// Reads a credentials file: `{"AccessKeyId": "...", "AccessKeySecret": "..."}`, or the JSON that
    /// `kmsim access-key create` / `kmsim client-key create` print.
    pub fn read_file(path: &Path) -> Result<Credentials, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: CredentialsFile = serde_json::from_str(&text).map_err(|_| {
            format!("{}: expected {{\"AccessKeyId\": \"...\", \"AccessKeySecret\": \"...\"}}", path.display())
        })?;
        if file.access_key_id.is_empty() || file.access_key_secret.is_empty() {
            return Err(format!("{}: AccessKeyId and AccessKeySecret must not be empty", path.display()));
        }
        Ok(Credentials::new(file.access_key_id, file.access_key_secret))
    }

    /// The credentials in `path`, or new ones written there (readable by the owner only) if it does not exist.
    pub fn read_or_create_file(path: &Path) -> Result<(Credentials, bool), String> {
        if path.exists() {
            return Credentials::read_file(path).map(|c| (c, false));
        }
        let (access_key_id, secret) = new_access_key_pair();
        let file =
            CredentialsFile { access_key_id: access_key_id.clone(), access_key_secret: secret.expose().to_owned() };
        let text = serde_json::to_string_pretty(&file).expect("credentials serialise");
        write_private(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((Credentials { access_key_id, secret }, true))
    }
}

/// The file format; the camelCase spellings let the JSON output of `kmsim access-key create` and
/// `kmsim client-key create` serve as a credentials file as it is.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsFile {
    #[serde(alias = "accessKeyId", alias = "clientKeyId")]
    access_key_id: String,
    #[serde(alias = "accessKeySecret", alias = "clientKeySecret")]
    access_key_secret: String,
}

/// Writes a new file readable by its owner only; an existing file is never overwritten.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
