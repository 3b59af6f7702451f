//! One job over a tree: configs → scan → rules → registry → state → policy. `check` and
//! `update` are this job plus output (and edits); `run` is this job per repository. It
//! is handed resolved options ([`crate::options`]): a resolver, a store path.
//!
//! The repository config is read from the first path (a directory; `.` by default). An
//! invalid config stops the job before anything is looked up or written.

use std::path::PathBuf;
use std::sync::Arc;

use crate::check;
use crate::config::{self, Rules, ServiceConfig};
use crate::model::Record;
use crate::policy::{self, ChangeSet};
use crate::registry::resolve::Resolver;
use crate::scan::walk::{self, Report};
use crate::state::{self, Store};

pub mod kept;

pub use kept::KeptTree;

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config is not valid.
    #[error(transparent)]
    Config(#[from] config::Error),
    /// A path to scan is missing or unreadable.
    #[error(transparent)]
    Scan(#[from] walk::Error),
}

/// What a job is asked to do.
#[derive(Debug)]
pub struct JobOptions {
    /// Files or folders to scan (empty: the current folder).
    pub paths: Vec<PathBuf>,
    /// The service config.
    pub service: Option<ServiceConfig>,
    /// The state store's path, resolved ([`crate::options::state_path`]); `None`: no
    /// store (references under `min_age` or a schedule wait).
    pub store_path: Option<PathBuf>,
    /// `--pin`: pin tag-only references whatever the rules say.
    pub pin: bool,
    /// The lookups to use (`run` shares one set across its repositories).
    pub resolver: Arc<Resolver>,
    /// A store already open (`serve` keeps one open for every job: a `redb` file can be
    /// open once per process); `None` opens the one at `state` when needed.
    pub store: Option<Arc<Store>>,
    /// The repository (`owner/name`) schedule anchors are kept for; `None`: the
    /// scanned root's absolute path (`update` in a working tree).
    pub repository: Option<String>,
}

impl JobOptions {
    /// A job over `paths` with `resolver`, and nothing else set.
    #[must_use]
    pub fn new(paths: Vec<PathBuf>, resolver: Arc<Resolver>) -> Self {
        Self {
            paths,
            service: None,
            store_path: None,
            pin: false,
            resolver,
            store: None,
            repository: None,
        }
    }
}

/// What a job found and decided.
pub struct Outcome {
    /// The scan: findings, warnings, the files read.
    pub report: Report,
    /// One record per finding, in output order; change sets index into it.
    pub records: Vec<Record>,
    /// The change sets to propose, in order.
    pub change_sets: Vec<ChangeSet>,
    /// Config problems that did not stop the job (two config files, an unusable store).
    pub warnings: Vec<String>,
    /// The state store, when it was opened.
    pub store: Option<Arc<Store>>,
    /// When the job ran (Unix seconds).
    pub now: u64,
    /// What schedule anchors are kept for (see [`JobOptions::repository`]).
    pub scope: String,
    /// The run's lookups, for what comes after (PR bodies ask about the new images).
    pub resolver: Arc<Resolver>,
    /// The repository config file read (`None` for none, or a kept scan's).
    pub config_file: Option<config::RepoConfigFile>,
    /// The warnings finding the repository config gave.
    pub config_warnings: Vec<String>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs the job: scan, apply the rules, look up, decide. `tick` counts references
/// checked (for progress).
///
/// # Errors
/// [`Error`] for an invalid config, a missing path, or unusable credentials; lookup
/// failures are per reference, in the outcome.
#[tracing::instrument(level = "debug", skip_all, fields(repository = opts.repository.as_deref().unwrap_or("(local)")))]
pub async fn check_tree(opts: &JobOptions, tick: &(dyn Fn() + Sync)) -> Result<Outcome, Error> {
    let paths = if opts.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        opts.paths.clone()
    };
    let root = paths
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let (config_file, config_warnings) = config::find_repo_config(&root)?;
    let repo = match &config_file {
        Some((file, text)) => config::parse_repo(file, text)?,
        None => config::RepoConfig::default(),
    };
    let policy = Rules::new(opts.service.as_ref(), &repo);
    let report = walk::scan_paths_with(&paths, &|path| policy.scan.reader_for(path))?;
    let scanned = Input {
        report,
        config_file,
        config_warnings,
        root,
    };
    Ok(decide(opts, &policy, scanned, tick).await)
}

/// The job over a repository's kept scan ([`KeptTree`]) instead of a tree on disk: the
/// same lookups and decisions, from the kept texts scanned again. The outcome has no
/// sources: nothing can be written from it.
///
/// # Errors
/// [`Error::Config`] for a kept repository config that no longer passes.
pub async fn check_kept(
    opts: &JobOptions,
    kept: &KeptTree,
    tick: &(dyn Fn() + Sync),
) -> Result<Outcome, Error> {
    let (repo, report, config_warnings) = kept.rescan()?;
    let policy = Rules::new(opts.service.as_ref(), &repo);
    let scanned = Input {
        report,
        config_file: None,
        config_warnings,
        root: PathBuf::from("."),
    };
    Ok(decide(opts, &policy, scanned, tick).await)
}

/// A scan and where it came from.
struct Input {
    report: Report,
    config_file: Option<config::RepoConfigFile>,
    config_warnings: Vec<String>,
    /// The scanned root (schedule anchors are kept for it without a repository).
    root: PathBuf,
}

/// Rules, lookups, state and policy over a scan.
async fn decide(
    opts: &JobOptions,
    policy: &Rules,
    scanned: Input,
    tick: &(dyn Fn() + Sync),
) -> Outcome {
    let Input {
        mut report,
        config_file,
        config_warnings,
        root,
    } = scanned;
    let mut warnings = config_warnings.clone();
    report
        .found
        .retain(|f| policy.scan.format_enabled(f.format));
    let found = std::mem::take(&mut report.found);
    let mut records = policy::records(found, policy);

    // The store is opened before the lookups: they read and keep facts about digests
    // there. One that cannot be opened costs requests, and matters only when the rules
    // need it (below).
    let opened = match (&opts.store, &opts.store_path) {
        (Some(shared), _) => Some(Ok(Arc::clone(shared))),
        (None, Some(path)) => Some(Store::open(path).map(Arc::new)),
        (None, None) => None,
    };
    let resolver = Arc::clone(&opts.resolver);
    if let Some(Ok(store)) = &opened {
        resolver.keep_facts_in(Arc::new(KeptFacts(Arc::clone(store))));
    }
    check::check(&resolver, &mut records, tick).await;

    let now = now_secs();
    let scope = opts.repository.clone().unwrap_or_else(|| {
        std::fs::canonicalize(&root)
            .unwrap_or_else(|_| root.clone())
            .to_string_lossy()
            .into_owned()
    });
    let keys = policy::state_keys(&records, opts.pin, &scope);
    let store = opened.as_ref().and_then(|o| o.as_ref().ok().cloned());
    let snapshot = if keys.is_empty() {
        Some(state::Snapshot::default())
    } else {
        match opened {
            None => {
                warnings.push("no state store path (set --state or REPIN_STATE); references under min_age or a schedule wait".into());
                None
            }
            Some(Err(e)) => {
                warnings.push(format!("{e}; references under min_age or a schedule wait"));
                None
            }
            Some(Ok(opened)) => match opened.record_and_snapshot(&keys, now) {
                Ok(snap) => Some(snap),
                Err(e) => {
                    warnings.push(format!("{e}; references under min_age or a schedule wait"));
                    None
                }
            },
        }
    };
    let change_sets = policy::decide(&mut records, opts.pin, now, snapshot.as_ref(), &scope);
    Outcome {
        report,
        records,
        change_sets,
        warnings,
        store,
        now,
        scope,
        resolver,
        config_file,
        config_warnings,
    }
}

/// The state store as the lookups' keeper of facts about digests (a failure to read
/// or keep one only costs requests).
struct KeptFacts(Arc<Store>);

impl crate::registry::resolve::Kept for KeptFacts {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.cached(state::Cache::Facts, key).ok().flatten()
    }

    fn put(&self, key: &str, value: &[u8]) {
        if let Err(e) = self.0.cache(state::Cache::Facts, key, value) {
            tracing::debug!(%e, "a fact about a digest was not kept");
        }
    }
}

impl Outcome {
    /// What to keep of this outcome's scan ([`KeptTree::of`]).
    #[must_use]
    pub fn scanned(&self) -> kept::Scanned<'_> {
        kept::Scanned {
            config: (&self.config_file, &self.config_warnings),
            report: &self.report,
            found: self.records.iter().map(|r| &r.found).collect(),
        }
    }

    /// Every warning of the job, the scan's (files that could not be read) first.
    #[must_use]
    pub fn all_warnings(&self) -> Vec<String> {
        self.report
            .warnings
            .iter()
            .map(ToString::to_string)
            .chain(self.warnings.iter().cloned())
            .collect()
    }
}

/// Records that change sets with a schedule were proposed now, so the next proposal
/// waits for the next tick.
///
/// # Errors
/// The store's.
pub fn record_proposed(outcome: &Outcome, proposed: &[&ChangeSet]) -> Result<(), state::Error> {
    let keys: Vec<String> = proposed
        .iter()
        .filter(|s| s.settings.schedule.is_some())
        .map(|s| state::anchor_key(&outcome.scope, &s.id))
        .collect();
    match (&outcome.store, keys.is_empty()) {
        (Some(store), false) => store.set(&keys, outcome.now),
        _ => Ok(()),
    }
}
