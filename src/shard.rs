//! Splitting a fleet of repositories across N workers with no coordination: repository
//! `owner/name` belongs to shard `h mod N`, where `h` is the first 8 bytes of the
//! SHA-256 of its lower-cased name. The hash depends on the name alone, so every worker
//! computes the same split, and adding or removing repositories never moves the others.
//!
//! `--shard INDEX/COUNT` names a shard; in a Kubernetes Indexed Job, the index comes from
//! `JOB_COMPLETION_INDEX` and the count from `REPIN_SHARD_COUNT`.

use sha2::{Digest as _, Sha256};

/// The variable Kubernetes sets in each pod of an Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The variable holding the shard count next to [`INDEX_ENV`] (set it to the Job's
/// `completions`).
pub const COUNT_ENV: &str = "REPIN_SHARD_COUNT";

/// One shard of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This worker's index, 0-based.
    pub index: u64,
    /// How many workers.
    pub count: u64,
}

/// Why a shard could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Not `INDEX/COUNT` with `0 <= INDEX < COUNT`.
    #[error("invalid shard {0:?}: write INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")]
    Invalid(String),
    /// `JOB_COMPLETION_INDEX` without `REPIN_SHARD_COUNT`.
    #[error("{INDEX_ENV} is set but {COUNT_ENV} is not; set it to the Job's completions")]
    NoCount,
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::Invalid(s.to_owned());
        let (index, count) = s.split_once('/').ok_or_else(invalid)?;
        let index: u64 = index.trim().parse().map_err(|_| invalid())?;
        let count: u64 = count.trim().parse().map_err(|_| invalid())?;
        if count == 0 || index >= count {
            return Err(invalid());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The shard from a flag, else from the Indexed Job's variables (read through
    /// `var`), else none (all repositories).
    ///
    /// # Errors
    /// [`Error`] for a malformed flag or variables.
    pub fn choose(
        flag: Option<&str>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Error> {
        if let Some(flag) = flag {
            return flag.parse().map(Some);
        }
        match (var(INDEX_ENV), var(COUNT_ENV)) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(Error::NoCount),
            (Some(index), Some(count)) => format!("{index}/{count}").parse().map(Some),
        }
    }

    /// Whether a repository (`owner/name`, any case) belongs to this shard.
    #[must_use]
    pub fn contains(&self, full_name: &str) -> bool {
        of(full_name, self.count) == self.index
    }
}

/// The shard of `count` a repository belongs to.
#[must_use]
pub fn of(full_name: &str, count: u64) -> u64 {
    let hash = Sha256::digest(full_name.to_ascii_lowercase().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first) % count.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("org{}/repo-{i}", i % 7)).collect()
    }

    #[test]
    fn every_repository_lands_in_exactly_one_shard() {
        let repos = names(500);
        for count in [1, 2, 3, 4, 7, 16] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            let mut sizes = vec![0usize; usize::try_from(count).unwrap()];
            for repo in &repos {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.contains(repo)).collect();
                assert_eq!(owners.len(), 1, "{repo} with {count} shards: {owners:?}");
                sizes[usize::try_from(owners[0].index).unwrap()] += 1;
            }
            // The hash spreads the fleet: no shard is empty or holds more than twice
            // its share.
            let share = repos.len() / sizes.len();
            assert!(
                sizes.iter().all(|&n| n > 0 && n <= 2 * share),
                "{count} shards: {sizes:?}"
            );
        }
    }

    #[test]
    fn assignments_are_stable_when_repositories_are_added() {
        let before = names(100);
        let after = names(300);
        for count in [2, 5, 9] {
            let assigned: Vec<u64> = before.iter().map(|r| of(r, count)).collect();
            let again: Vec<u64> = after[..100].iter().map(|r| of(r, count)).collect();
            assert_eq!(assigned, again);
        }
        // Case does not matter (GitHub names are case-insensitive).
        assert_eq!(of("Acme/Widgets", 8), of("acme/widgets", 8));
    }

    #[test]
    fn shards_parse_from_flags_and_indexed_job_variables() {
        let none = |_: &str| None;
        assert_eq!(
            Shard::choose(Some("1/4"), none),
            Ok(Some(Shard { index: 1, count: 4 }))
        );
        assert_eq!(Shard::choose(None, none), Ok(None));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert_eq!(
                Shard::choose(Some(bad), none),
                Err(Error::Invalid(bad.into()))
            );
        }
        let job = |name: &str| match name {
            INDEX_ENV => Some("2".to_owned()),
            COUNT_ENV => Some("3".to_owned()),
            _ => None,
        };
        assert_eq!(
            Shard::choose(None, job),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        let index_only = |name: &str| (name == INDEX_ENV).then(|| "0".to_owned());
        assert_eq!(Shard::choose(None, index_only), Err(Error::NoCount));
    }
}
