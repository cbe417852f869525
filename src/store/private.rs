//! A data dir holds the audit signing key, raw key material and AccessKey
//! secrets, so it and every file in it are its owner's alone: the directory
//! 0700 and the files 0600, whatever the umask says.
//!
//! SQLite creates the `-wal` and `-shm` files itself, but with the mode of the
//! database file they belong to (and it sets that mode even against the
//! umask). So the store creates `kmsim.db` 0600 before SQLite opens it, and
//! the log and the shared memory follow without a process-wide umask, which
//! other threads would see too.

use std::io;
use std::path::{Path, PathBuf};

/// The database file, and the files SQLite keeps beside it.
pub(super) const DB_FILE: &str = "kmsim.db";
const SIDE_FILES: [&str; 3] = ["kmsim.db-wal", "kmsim.db-shm", "kmsim.db-journal"];

#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;
/// Any permission for the group or others.
#[cfg(unix)]
const SHARED_BITS: u32 = 0o077;

/// A data dir that others than its owner can get into, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDataDir {
    pub dir: PathBuf,
    /// The permission bits, e.g. `0o755`.
    pub mode: u32,
}

impl std::fmt::Display for SharedDataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = self.dir.display();
        write!(
            f,
            "the data directory {dir} has mode {:04o}, so users other than its owner can reach it, and it holds the \
             audit signing key, key material and AccessKey secrets. Make it private with `chmod 700 {dir}`, or \
             start anyway with --allow-shared-data-dir",
            self.mode
        )
    }
}

impl std::error::Error for SharedDataDir {}

/// Judges `dir` before the store opens it. One that does not exist yet is
/// fine: the store creates it private. An empty one (what `tempfile` and many
/// a `mkdir` make, 0755 under the usual umask) holds nothing yet, so it is made
/// 0700 here, before anything is written into it. One with something in it
/// that the group or others have any permission on is refused.
#[cfg(unix)]
pub fn ensure_private(dir: &Path) -> io::Result<Result<(), SharedDataDir>> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = match std::fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(())),
        Err(e) => return Err(e),
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & SHARED_BITS == 0 {
        return Ok(Ok(()));
    }
    if metadata.is_dir() && std::fs::read_dir(dir)?.next().is_none() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
        return Ok(Ok(()));
    }
    Ok(Err(SharedDataDir { dir: dir.to_path_buf(), mode }))
}

/// Without Unix permissions there is nothing to judge.
#[cfg(not(unix))]
pub fn ensure_private(_dir: &Path) -> io::Result<Result<(), SharedDataDir>> {
    Ok(Ok(()))
}

/// Creates `dir` and any missing parents, each private to the owner; an
/// existing directory keeps its mode (the server has judged it already).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Makes `kmsim.db` (creating it empty, which SQLite reads as a new
/// database) and whatever SQLite left beside it 0600, before SQLite opens it.
/// Files written by a kmsim that did not do this are tightened too.
pub(super) fn prepare_files(dir: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let db = dir.join(DB_FILE);
    drop(options.open(&db)?);
    restrict(&db)?;
    for name in SIDE_FILES {
        match restrict(&dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// The mode a file is created with is the umask's to narrow, never to widen;
/// an existing file's mode is set here.
#[cfg(unix)]
fn restrict(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::metadata(path)?.permissions().mode() & 0o777 != FILE_MODE {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(path: &Path) -> io::Result<()> {
    std::fs::metadata(path).map(drop)
}
