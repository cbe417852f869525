//! Seeds: fixtures described in YAML (keys with fixed ids and given material,
//! aliases, secrets, instances, identities, faults), applied at start
//! (`kmsim serve --seed FILE`) or to a running server (`ApplySeed`).

/// A seed document and where it came from.
#[derive(Debug, Clone)]
pub struct SeedSource {
    /// A file name, for messages and the audit record.
    pub name: String,
    /// The YAML text.
    pub text: String,
}

impl SeedSource {
    /// Reads a seed file.
    pub fn read(path: &std::path::Path) -> std::io::Result<SeedSource> {
        let text = std::fs::read_to_string(path)?;
        Ok(SeedSource { name: path.display().to_string(), text })
    }
}
