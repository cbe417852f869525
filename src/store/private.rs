//! A store's files and the directory they are in, which are their owner's
//! alone: they hold the audit signing key, raw key material and AccessKey
//! secrets. The directory is 0700 and the files 0600, whatever the umask says.
//! A data dir is kept; a store that nothing outlives (`--in-memory`) is the
//! same files in a scratch dir of its own under the system's temp dir, which
//! goes with the store.
//!
//! SQLite creates the `-wal` and `-shm` files itself, but with the mode of the
//! database file they belong to (and it sets that mode even against the
//! umask). So the store creates `kmsim.db` 0600 before SQLite opens it, and
//! the log and the shared memory follow without a process-wide umask, which
//! other threads would see too.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::Location;

/// The database file, and the files SQLite keeps beside it.
pub(super) const DB_FILE: &str = "kmsim.db";
const SIDE_FILES: [&str; 3] = ["kmsim.db-wal", "kmsim.db-shm", "kmsim.db-journal"];

/// A scratch dir's name, before the random part that makes it unique.
const SCRATCH_PREFIX: &str = "kmsim-in-memory-";
/// Locked by the process whose store is in a scratch dir, for as long as the store is open.
const OWNER_FILE: &str = "owner.lock";

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

/// Where a store's files are.
pub(super) enum StoreDir {
    /// A data dir: the store is kept.
    Data(PathBuf),
    /// Nothing outlives the store.
    Scratch(ScratchDir),
}

impl StoreDir {
    /// The directory of `location`, created private if missing, with `kmsim.db` ready for SQLite to open.
    pub(super) fn open(location: &Location) -> io::Result<StoreDir> {
        let opened = match location {
            Location::Dir(dir) => StoreDir::Data(dir.clone()),
            Location::InMemory => StoreDir::Scratch(ScratchDir::create()?),
        };
        let path = opened.path();
        let in_dir = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        if let StoreDir::Data(dir) = &opened {
            create_dir(dir).map_err(in_dir)?;
        }
        prepare_files(path).map_err(in_dir)?;
        Ok(opened)
    }

    pub(super) fn path(&self) -> &Path {
        match self {
            StoreDir::Data(dir) => dir,
            StoreDir::Scratch(scratch) => scratch.dir.path(),
        }
    }

    pub(super) fn database(&self) -> PathBuf {
        self.path().join(DB_FILE)
    }

    /// Whether the files outlive the store, and so must survive a crash.
    pub(super) fn is_kept(&self) -> bool {
        matches!(self, StoreDir::Data(_))
    }
}

/// The private directory of a store that nothing outlives, under the
/// system's temp dir (`$TMPDIR`). It is removed when dropped, which the
/// store does once its writer has closed. A process killed before it could
/// (SIGKILL, a power cut) leaves it behind; the next store of the same user to
/// make one removes every scratch dir whose owner file nobody holds locked,
/// since the kernel lets go of a dead process's locks.
pub(super) struct ScratchDir {
    // Declared first, so dropped (removed) while the owner file is still locked.
    dir: tempfile::TempDir,
    _owner: File,
}

impl ScratchDir {
    fn create() -> io::Result<ScratchDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(SCRATCH_PREFIX);
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(DIR_MODE));
        let dir = builder.tempdir().map_err(|e| {
            let temp = std::env::temp_dir();
            io::Error::new(e.kind(), format!("a scratch directory for the store under {}: {e}", temp.display()))
        })?;
        // Locked before it has the name a sweep looks for, so no sweep finds it unlocked and takes it for abandoned.
        let pending = dir.path().join("owner.pending");
        let owner = private_file(&pending)?;
        owner.lock()?;
        std::fs::rename(&pending, dir.path().join(OWNER_FILE))?;
        remove_abandoned(dir.path());
        Ok(ScratchDir { dir, _owner: owner })
    }
}

/// Removes the scratch dirs beside `ours` that belong to its owner and whose
/// owner file nobody holds: their process died without removing them. A dir
/// being made has no owner file yet, and one in use is locked; both are left.
fn remove_abandoned(ours: &Path) {
    let (Some(temp), Ok(own)) = (ours.parent(), std::fs::symlink_metadata(ours)) else { return };
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir == ours || !entry.file_name().to_string_lossy().starts_with(SCRATCH_PREFIX) {
            continue;
        }
        // A link is never followed, and another user's dirs are theirs to clean.
        match std::fs::symlink_metadata(&dir) {
            Ok(metadata) if metadata.is_dir() && same_owner(&metadata, &own) => {}
            _ => continue,
        }
        let Ok(owner) = File::open(dir.join(OWNER_FILE)) else { continue };
        if owner.try_lock().is_err() {
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "removed the scratch store of an in-memory kmsim that was killed")
            }
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "could not remove an abandoned scratch store"),
        }
    }
}

#[cfg(unix)]
fn same_owner(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.uid() == b.uid()
}

#[cfg(not(unix))]
fn same_owner(_a: &std::fs::Metadata, _b: &std::fs::Metadata) -> bool {
    true
}

/// Opens `path` for writing, creating it 0600 if missing.
fn private_file(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(path)
}

/// Makes `kmsim.db` (creating it empty, which SQLite reads as a new
/// database) and whatever SQLite left beside it 0600, before SQLite opens it.
/// Files written by a kmsim that did not do this are tightened too.
fn prepare_files(dir: &Path) -> io::Result<()> {
    let db = dir.join(DB_FILE);
    drop(private_file(&db)?);
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// A dir in the temp dir named like a scratch dir, with an owner file unless `owner` is `None`, held
    /// locked when it is `Some(true)`; locked, as a store's is, before the sweep could see it.
    fn lookalike(owner: Option<bool>) -> (PathBuf, Option<File>) {
        let dir = tempfile::Builder::new().prefix(SCRATCH_PREFIX).tempdir().unwrap().keep();
        let file = owner.map(|held| {
            let file = private_file(&dir.join("pending")).unwrap();
            if held {
                file.lock().unwrap();
            }
            std::fs::rename(dir.join("pending"), dir.join(OWNER_FILE)).unwrap();
            file
        });
        (dir, file)
    }

    /// A scratch dir is private and goes when dropped; one whose owner is gone (its lock released, as the
    /// kernel does for a killed process) goes when the next is made, while one in use, or still being made
    /// (no owner file yet), stays.
    #[test]
    fn a_scratch_dir_is_private_and_removes_those_left_by_killed_processes() {
        let (abandoned, _) = lookalike(Some(false));
        let (in_use, held) = lookalike(Some(true));
        let (being_made, _) = lookalike(None);

        let scratch = StoreDir::open(&Location::InMemory).unwrap();
        let dir = scratch.path().to_path_buf();
        assert!(!scratch.is_kept());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&scratch.database()), 0o600);
        assert_eq!(mode(&dir.join(OWNER_FILE)), 0o600);
        assert!(!abandoned.exists(), "the abandoned dir was removed");
        assert!(in_use.exists() && being_made.exists(), "dirs in use or being made stay");
        // Another store's sweep does not take a scratch dir that is open.
        let other = StoreDir::open(&Location::InMemory).unwrap();
        assert!(dir.exists());
        drop((scratch, other));
        assert!(!dir.exists(), "dropped with its store");

        drop(held);
        std::fs::remove_dir_all(&in_use).unwrap();
        std::fs::remove_dir_all(&being_made).unwrap();
    }
}
