//! The state store: when each new digest was first seen, and when each scheduled
//! change set was last proposed. One `redb` file (pure Rust, no server), created on first
//! use at a configurable path.
//!
//! The policy engine never touches it: commands record what they observe here, take a
//! [`Snapshot`], and hand that to [`crate::policy`]. A store that cannot be opened means
//! no snapshot, and the policy then errs on the side of waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

/// Key → Unix seconds.
const TIMES: TableDefinition<&str, u64> = TableDefinition::new("times");

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
#[error("state store {path}: {source}")]
pub struct Error {
    path: String,
    #[source]
    source: redb::Error,
}

/// What the policy needs from the store, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per key, when it was first seen or proposed (Unix seconds).
    pub times: HashMap<String, u64>,
}

/// The key for "digest first seen for this tag".
#[must_use]
pub fn seen_key(registry: &str, repository: &str, tag: &str, digest: &str) -> String {
    format!("seen {registry}/{repository}:{tag}@{digest}")
}

/// The key for "change set last proposed" (its schedule anchor), per repository: one
/// repository's proposal must not hold back another's. `scope` is the repository
/// (`owner/name`, lower-cased) for `run` and `serve`, the scanned root for `update`.
#[must_use]
pub fn anchor_key(scope: &str, change_set: &str) -> String {
    format!("proposed {} {change_set}", scope.to_ascii_lowercase())
}

/// The key for "these digests were declined in this repository" (a repin PR proposing
/// them was closed without merging); `proposal` is the proposal's canonical text.
#[must_use]
pub fn declined_key(repository: &str, proposal: &str) -> String {
    format!("declined {} {proposal}", repository.to_ascii_lowercase())
}

/// An open store.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// Opens the store, creating the file and its folder on first use.
    ///
    /// # Errors
    /// [`Error`] when the file cannot be created or is not a store.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let fail = |source: redb::Error| Error {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(redb::Error::Io(e)))?;
        }
        let db = Database::create(path).map_err(|e| fail(e.into()))?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    fn fail(&self, source: impl Into<redb::Error>) -> Error {
        Error {
            path: self.path.display().to_string(),
            source: source.into(),
        }
    }

    /// Records `now` for every key not yet present, then returns every stored time.
    ///
    /// # Errors
    /// [`Error`] on a storage failure.
    pub fn record_and_snapshot(&self, keys: &[String], now: u64) -> Result<Snapshot, Error> {
        let tx = self.db.begin_write().map_err(|e| self.fail(e))?;
        let mut times = HashMap::new();
        {
            let mut table = tx.open_table(TIMES).map_err(|e| self.fail(e))?;
            for key in keys {
                let existing = table
                    .get(key.as_str())
                    .map_err(|e| self.fail(e))?
                    .map(|v| v.value());
                let value = if let Some(v) = existing {
                    v
                } else {
                    table.insert(key.as_str(), now).map_err(|e| self.fail(e))?;
                    now
                };
                times.insert(key.clone(), value);
            }
        }
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(Snapshot { times })
    }

    /// Sets keys to `now` (a change set was proposed).
    ///
    /// # Errors
    /// [`Error`] on a storage failure.
    pub fn set(&self, keys: &[String], now: u64) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = tx.open_table(TIMES).map_err(|e| self.fail(e))?;
            for key in keys {
                table.insert(key.as_str(), now).map_err(|e| self.fail(e))?;
            }
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// One stored time.
    ///
    /// # Errors
    /// [`Error`] on a storage failure.
    pub fn get(&self, key: &str) -> Result<Option<u64>, Error> {
        let tx = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = match tx.open_table(TIMES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.fail(e)),
        };
        Ok(table.get(key).map_err(|e| self.fail(e))?.map(|v| v.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_seen_is_kept_and_anchors_move() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.redb");
        let store = Store::open(&path).unwrap();
        let a = seen_key("r", "app", "1", "sha256:a");
        let snap = store
            .record_and_snapshot(std::slice::from_ref(&a), 100)
            .unwrap();
        assert_eq!(snap.times[&a], 100);
        let snap = store
            .record_and_snapshot(std::slice::from_ref(&a), 500)
            .unwrap();
        assert_eq!(snap.times[&a], 100, "first seen never moves");
        drop(store);
        // Survives a reopen.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(&a).unwrap(), Some(100));
        let anchor = anchor_key("acme/web", "node");
        store.set(std::slice::from_ref(&anchor), 700).unwrap();
        assert_eq!(store.get(&anchor).unwrap(), Some(700));
        assert_eq!(store.get("missing").unwrap(), None);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        std::fs::write(&path, b"not a database").unwrap();
        let err = Store::open(&path).expect_err("refused");
        assert!(err.to_string().starts_with("state store "), "{err}");
    }
}
