//! Files under a root, reached without following a single symbolic link: each folder on
//! the way is opened relative to the one before with `O_NOFOLLOW` (`cap-std`), so a
//! folder swapped for a link — even while repin works — cannot lead outside the root,
//! and a file that is a link, a FIFO or a folder is refused by kind, not by accident.
//!
//! Used for everything repin reads as instructions (the repository config) and for
//! every file it writes ([`crate::edit`]).

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Component, Path};

use cap_fs_ext::{DirExt as _, FollowSymlinks, OpenOptionsFollowExt as _};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

/// Why a file under a root could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing there.
    #[error("does not exist")]
    Missing,
    /// A symbolic link, where none may be followed.
    #[error("is a symbolic link (or lies under one); not followed")]
    Link,
    /// Not a regular file (what it is instead).
    #[error("is a {0}, not a regular file")]
    NotAFile(&'static str),
    /// The path leaves the root.
    #[error("the path leaves the root")]
    Outside,
    #[error("is larger than {limit} bytes")]
    /// Larger than the cap.
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// Another I/O failure.
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

impl Error {
    /// As an I/O error, for callers that report one (the reason kept as its message).
    #[must_use]
    pub fn into_io(self) -> std::io::Error {
        match self {
            Self::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

fn io(e: std::io::Error) -> Error {
    // ELOOP: a link where O_NOFOLLOW was asked; ENOTDIR: a link (or file) where a
    // folder was expected on the way.
    if e.raw_os_error() == Some(libc::ELOOP) || e.kind() == std::io::ErrorKind::NotADirectory {
        Error::Link
    } else if e.kind() == std::io::ErrorKind::NotFound {
        Error::Missing
    } else {
        Error::Io(e)
    }
}

/// Opens a root folder as named (the one place a path is followed as given: it is the
/// user's, or repin's own clone). Hold on to it: everything below is reached from this
/// handle, so the root swapped for a link later changes nothing.
///
/// # Errors
/// [`Error::Missing`], [`Error::Io`].
pub fn open_root(root: &Path) -> Result<Dir, Error> {
    Dir::open_ambient_dir(root, ambient_authority()).map_err(io)
}

/// The folder holding `within` (opened from `root` without following links) and the
/// file's name in it.
///
/// # Errors
/// [`Error::Outside`] for a path with `..`, a root or a prefix; [`Error::Link`] when a
/// folder on the way is a link; [`Error::Missing`]; [`Error::Io`].
pub fn parent(root: &Dir, within: &Path) -> Result<(Dir, OsString), Error> {
    let mut dir = root.try_clone().map_err(Error::Io)?;
    let mut parts = Vec::new();
    for component in within.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::Outside);
            }
        }
    }
    let name = parts.pop().ok_or(Error::Outside)?.to_owned();
    for part in parts {
        dir = dir.open_dir_nofollow(part).map_err(io)?;
    }
    Ok((dir, name))
}

/// An open regular file under a root, and its metadata (owner, mode, links).
pub struct Opened {
    /// The folder holding the file.
    pub dir: Dir,
    /// The file's name in that folder.
    pub name: OsString,
    /// The file, open for reading.
    pub file: std::fs::File,
    /// Its metadata.
    pub meta: std::fs::Metadata,
}

/// Opens `within` for reading, refusing links (anywhere on the way), non-files, and
/// files larger than `limit` bytes.
///
/// # Errors
/// As [`parent`], and [`Error::NotAFile`], [`Error::TooLarge`].
pub fn open(root: &Dir, within: &Path, limit: u64) -> Result<Opened, Error> {
    let (dir, name) = parent(root, within)?;
    let kind = dir.symlink_metadata(&name).map_err(io)?.file_type();
    if kind.is_symlink() {
        return Err(Error::Link);
    }
    if !kind.is_file() {
        return Err(Error::NotAFile(if kind.is_dir() {
            "folder"
        } else {
            "special file (FIFO, socket or device)"
        }));
    }
    let mut options = OpenOptions::new();
    options.read(true).follow(FollowSymlinks::No);
    let file = dir.open_with(&name, &options).map_err(io)?.into_std();
    let meta = file.metadata().map_err(Error::Io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile("special file (FIFO, socket or device)"));
    }
    if meta.len() > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(Opened {
        dir,
        name,
        file,
        meta,
    })
}

/// Reads `within` whole (see [`open`]); never more than `limit` bytes, even if the file
/// grows while it is read.
///
/// # Errors
/// As [`open`].
pub fn read(root: &Dir, within: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    let opened = open(root, within, limit)?;
    let mut bytes = Vec::new();
    opened
        .file
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(Error::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Error::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_through_a_link() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("repin.toml"), "x").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::fs::write(root.path().join("real/f"), "inside").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join(".github")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real/f"), root.path().join("l")).unwrap();
        std::os::unix::fs::symlink("real", root.path().join("inner")).unwrap();
        let r = &open_root(root.path()).unwrap();
        assert_eq!(read(r, Path::new("real/f"), 100).unwrap(), b"inside");
        assert!(matches!(
            read(r, Path::new(".github/repin.toml"), 100),
            Err(Error::Link)
        ));
        assert!(matches!(read(r, Path::new("l"), 100), Err(Error::Link)));
        // Even a link that stays inside the root is not followed.
        assert!(matches!(
            read(r, Path::new("inner/f"), 100),
            Err(Error::Link)
        ));
        assert!(matches!(
            read(r, Path::new("../x"), 100),
            Err(Error::Outside)
        ));
        assert!(matches!(
            read(r, Path::new("/etc/passwd"), 100),
            Err(Error::Outside)
        ));
        assert!(matches!(
            read(r, Path::new("nope"), 100),
            Err(Error::Missing)
        ));
        assert!(matches!(
            read(r, Path::new("real"), 100),
            Err(Error::NotAFile("folder"))
        ));
        assert!(matches!(
            read(r, Path::new("real/f"), 3),
            Err(Error::TooLarge { limit: 3 })
        ));
        let fifo = root.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(matches!(
            read(r, Path::new("fifo"), 100),
            Err(Error::NotAFile(_))
        ));
    }
}
