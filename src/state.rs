//! The state store: when each new digest was first seen, and when each scheduled
//! change set was last proposed; and, as caches that only save requests, facts about
//! digests (which never change) and what each repository's scan was at its default
//! branch's commit. One `redb` file (pure Rust, no server), created on first use at a
//! configurable path.
//!
//! The policy engine never touches it: commands record what they observe here, take a
//! [`Snapshot`], and hand that to [`crate::policy`]. A store that cannot be opened means
//! no snapshot, and the policy then errs on the side of waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _,
    TableDefinition,
};

/// Key → Unix seconds.
const TIMES: TableDefinition<&str, u64> = TableDefinition::new("times");
/// Kept bytes by key, one table per kind of cache ([`Cache`]).
type Bytes = TableDefinition<'static, &'static str, &'static [u8]>;

/// A cache in the store: bytes by key, bounded in entries and entry size. Losing any
/// entry only costs the requests (or the clone) that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Facts about digests (kind, platform, an index's children, created and source):
    /// at most 50,000 entries of at most 64 KiB.
    Facts,
    /// Per repository, what its scan was at its default branch's commit, and its pull
    /// request list with GitHub's validator: at most 40,000 entries (20,000
    /// repositories) of at most 1 MiB (a repository whose kept scan would be larger is
    /// cloned every run).
    Trees,
}

impl Cache {
    fn table(self) -> Bytes {
        match self {
            Self::Facts => TableDefinition::new("facts"),
            Self::Trees => TableDefinition::new("trees"),
        }
    }

    /// (most entries, largest entry in bytes).
    #[must_use]
    pub fn bounds(self) -> (u64, usize) {
        match self {
            Self::Facts => (50_000, 64 * 1024),
            Self::Trees => (40_000, 1024 * 1024),
        }
    }
}

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
        // Most runs record nothing new: read first, and write (a durable commit) only
        // when a key is missing.
        if let Some(times) = self.all_present(keys)? {
            return Ok(Snapshot { times });
        }
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

    /// Every key's time, when every key is stored; `None` when one is missing.
    fn all_present(&self, keys: &[String]) -> Result<Option<HashMap<String, u64>>, Error> {
        self.read(TIMES, |table| {
            let mut times = HashMap::with_capacity(keys.len());
            for key in keys {
                match table.get(key.as_str())? {
                    Some(v) => times.insert(key.clone(), v.value()),
                    None => return Ok(None),
                };
            }
            Ok(Some(times))
        })
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

    /// The bytes kept under `key` in `cache`.
    ///
    /// # Errors
    /// [`Error`] on a storage failure.
    pub fn cached(&self, cache: Cache, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.read(cache.table(), |table| {
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        })
    }

    /// Keeps `value` under `key` in `cache` (a value over the cache's size bound is not
    /// kept). A full cache first drops a tenth of its entries, the first in key order.
    /// Written without waiting for the disk: the next durable write (first-seen times,
    /// anchors) makes it durable, and a crash before that loses only cache entries.
    ///
    /// # Errors
    /// [`Error`] on a storage failure.
    pub fn cache(&self, cache: Cache, key: &str, value: &[u8]) -> Result<(), Error> {
        self.cache_within(cache, key, value, cache.bounds())
    }

    fn cache_within(
        &self,
        cache: Cache,
        key: &str,
        value: &[u8],
        (most, largest): (u64, usize),
    ) -> Result<(), Error> {
        if value.len() > largest {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(|e| self.fail(e))?;
        // Refused only with persistent savepoints (none here): then it is durable.
        let _ = tx.set_durability(redb::Durability::None);
        {
            let mut table = tx.open_table(cache.table()).map_err(|e| self.fail(e))?;
            if table.len().map_err(|e| self.fail(e))? >= most {
                let drop: Vec<String> = table
                    .iter()
                    .map_err(|e| self.fail(e))?
                    .take(usize::try_from(most / 10).unwrap_or(usize::MAX).max(1))
                    .filter_map(|entry| entry.ok().map(|(k, _)| k.value().to_owned()))
                    .collect();
                for k in drop {
                    table.remove(k.as_str()).map_err(|e| self.fail(e))?;
                }
            }
            table.insert(key, value).map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// One stored time.
    ///
    /// # Errors
    /// [`Error`] on a storage failure.
    pub fn get(&self, key: &str) -> Result<Option<u64>, Error> {
        self.read(TIMES, |table| Ok(table.get(key)?.map(|v| v.value())))
    }

    /// `read` over `table` in one read transaction; a table not yet made reads as
    /// `None`.
    fn read<K, V, R>(
        &self,
        table: TableDefinition<'_, K, V>,
        read: impl FnOnce(&redb::ReadOnlyTable<K, V>) -> Result<Option<R>, redb::StorageError>,
    ) -> Result<Option<R>, Error>
    where
        K: redb::Key + 'static,
        V: redb::Value + 'static,
    {
        let tx = self.db.begin_read().map_err(|e| self.fail(e))?;
        match tx.open_table(table) {
            Ok(t) => read(&t).map_err(|e| self.fail(e)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
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
    fn caches_are_bounded_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let store = Store::open(&path).unwrap();
        for i in 0..25 {
            store
                .cache_within(Cache::Facts, &format!("k{i:02}"), b"v", (10, 4))
                .unwrap();
        }
        store
            .cache_within(Cache::Facts, "big", b"too large", (10, 4))
            .unwrap();
        assert_eq!(store.cached(Cache::Facts, "big").unwrap(), None);
        let kept: Vec<_> = (0..25)
            .filter(|i| {
                store
                    .cached(Cache::Facts, &format!("k{i:02}"))
                    .unwrap()
                    .is_some()
            })
            .collect();
        assert!(kept.len() <= 10 && kept.contains(&24), "{kept:?}");
        // Caches are apart: a tree key is not a fact.
        assert_eq!(store.cached(Cache::Trees, "k24").unwrap(), None);
        store.cache(Cache::Trees, "k24", b"tree").unwrap();
        // A durable write (first-seen times) makes the cache writes durable too.
        store.set(&["anchor".to_owned()], 1).unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.cached(Cache::Trees, "k24").unwrap().as_deref(),
            Some(&b"tree"[..])
        );
        assert_eq!(
            store.cached(Cache::Facts, "k24").unwrap().as_deref(),
            Some(&b"v"[..])
        );
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
