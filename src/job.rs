//! One job over a tree: configs → scan → rules → registry → state → policy. `check` and
//! `update` are this job plus output (and edits); `run` will be this job per repository.
//!
//! The repository config is read from the first path (a directory; `.` by default). An
//! invalid config stops the job before anything is looked up or written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::check;
use crate::config::{self, Policy, ServiceConfig};
use crate::model::Record;
use crate::policy::{self, ChangeSet};
use crate::registry::auth::Credential;
use crate::registry::client::{Client, Credentials, Options};
use crate::registry::dockerconfig::DockerConfig;
use crate::registry::resolve::Resolver;
use crate::scan::walk::{self, Report};
use crate::secret::Secret;
use crate::state::{self, Store};

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error(transparent)]
    Scan(#[from] walk::Error),
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
    #[error("registry {registry}: environment variable {var} is not set")]
    MissingEnv { registry: String, var: String },
}

/// What a job is asked to do.
#[derive(Debug, Default)]
pub struct JobOptions {
    pub paths: Vec<PathBuf>,
    pub service: Option<ServiceConfig>,
    /// The state store (`--state`); else `REPIN_STATE`, the service config, the default.
    pub state: Option<PathBuf>,
    /// `--pin`: pin tag-only references whatever the rules say.
    pub pin: bool,
    pub insecure: Vec<String>,
    pub timeout: Option<Duration>,
    /// When every registry lookup must be done (`--deadline`).
    pub deadline: Option<tokio::time::Instant>,
    pub per_registry: Option<usize>,
    /// Lookups to share with other jobs (`run` shares one across its repositories);
    /// `None` makes a resolver for this job.
    pub resolver: Option<Arc<Resolver>>,
    /// A store already open (`serve` keeps one open for every job: a `redb` file can be
    /// open once per process); `None` opens the one at [`state_path`] when needed.
    pub store: Option<Arc<Store>>,
    /// The repository (`owner/name`) schedule anchors are kept for; `None`: the
    /// scanned root's absolute path (`update` in a working tree).
    pub repository: Option<String>,
}

/// What a job found and decided.
pub struct Outcome {
    pub report: Report,
    /// One record per finding, in output order; change sets index into it.
    pub records: Vec<Record>,
    pub change_sets: Vec<ChangeSet>,
    /// Config problems that did not stop the job (two config files, an unusable store).
    pub warnings: Vec<String>,
    pub store: Option<Arc<Store>>,
    pub now: u64,
    /// What schedule anchors are kept for (see [`JobOptions::repository`]).
    pub scope: String,
    /// The run's lookups, for what comes after (PR bodies ask about the new images).
    pub resolver: Arc<Resolver>,
}

/// The store path: `--state`, then `REPIN_STATE`, then the service config, then the
/// default under the user's state folder.
#[must_use]
pub fn state_path(flag: Option<&Path>, service: Option<&ServiceConfig>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("REPIN_STATE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or_else(|| service.and_then(|s| s.state.clone()))
        .or_else(state::default_path)
}

use crate::registry::client::registry_env_var;

/// Client options from the service config and the command line (the flags win).
#[must_use]
pub fn client_options(opts: &JobOptions) -> Options {
    let mut options = Options::default();
    if let Some(service) = &opts.service {
        for (host, r) in &service.registries {
            if r.insecure {
                options.insecure.push(host.clone());
            }
            if let Some(mirror) = &r.mirror {
                options.mirrors.insert(host.clone(), mirror.clone());
            }
        }
        if let Some(n) = service.per_registry {
            options.per_registry = n;
        }
    }
    options.insecure.extend(opts.insecure.iter().cloned());
    if let Some(t) = opts.timeout {
        options.timeout = t;
    }
    options.deadline = opts.deadline;
    if let Some(n) = opts.per_registry {
        options.per_registry = n;
    }
    options
}

/// Credentials: per registry from the environment (the service config names the
/// variables; `REPIN_REGISTRY_<HOST>_USERNAME`/`_PASSWORD` override), then Docker's
/// config (`REPIN_DOCKER_CONFIG`, the service config's `docker_config`, then Docker's
/// own default).
///
/// # Errors
/// [`Error::MissingEnv`] for a variable the service config names that is not set, and a
/// Docker config that cannot be read.
pub fn credentials(service: Option<&ServiceConfig>) -> Result<Credentials, Error> {
    let mut fixed = HashMap::new();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let hosts: Vec<(String, Option<String>, Option<String>)> = service
        .map(|s| {
            s.registries
                .iter()
                .map(|(h, r)| (h.clone(), r.username_env.clone(), r.password_env.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (host, user_env, pass_env) in hosts {
        let user =
            var(&registry_env_var(&host, "USERNAME")).or_else(|| user_env.as_deref().and_then(var));
        let pass =
            var(&registry_env_var(&host, "PASSWORD")).or_else(|| pass_env.as_deref().and_then(var));
        match (user, pass) {
            (Some(username), Some(password)) => {
                fixed.insert(
                    host,
                    Credential::Basic {
                        username,
                        password: Secret::new(password),
                    },
                );
            }
            (_, None) if pass_env.is_some() => {
                return Err(Error::MissingEnv {
                    registry: host,
                    var: pass_env.unwrap_or_default(),
                });
            }
            (None, Some(_)) if user_env.is_some() => {
                return Err(Error::MissingEnv {
                    registry: host,
                    var: user_env.unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
    // Every `REPIN_REGISTRY_…` variable, for registries the service config does not name.
    let env = std::env::vars()
        .filter(|(k, v)| k.starts_with("REPIN_REGISTRY_") && !v.is_empty())
        .map(|(k, v)| (k, Secret::new(v)))
        .collect();
    let docker_path = std::env::var_os("REPIN_DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| service.and_then(|s| s.docker_config.clone()))
        .or_else(DockerConfig::default_path);
    let docker = match docker_path {
        Some(path) => DockerConfig::load(&path)?,
        None => DockerConfig::default(),
    };
    Ok(Credentials::Layered { fixed, env, docker })
}

/// A resolver with the job's transport options and credentials.
///
/// # Errors
/// As [`credentials`], and a client that cannot be set up.
pub fn resolver_for(opts: &JobOptions) -> Result<Arc<Resolver>, Error> {
    let client = Client::new(client_options(opts), credentials(opts.service.as_ref())?)?;
    Ok(Resolver::new(Arc::new(client)))
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
pub async fn run(opts: &JobOptions, tick: &(dyn Fn() + Sync)) -> Result<Outcome, Error> {
    let paths = if opts.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        opts.paths.clone()
    };
    let mut warnings = Vec::new();
    let root = paths
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("."));
    let (repo, config_warnings) = config::load_repo(&root)?;
    warnings.extend(config_warnings);
    let policy = Policy::new(opts.service.as_ref(), &repo);

    let mut report = walk::scan_paths(&paths)?;
    report
        .found
        .retain(|f| policy.scan.format_enabled(f.format));
    let found = std::mem::take(&mut report.found);
    let mut records = policy::records(found, &policy);

    let resolver = match &opts.resolver {
        Some(shared) => Arc::clone(shared),
        None => resolver_for(opts)?,
    };
    check::check(&resolver, &mut records, tick).await;

    let now = now_secs();
    let scope = opts.repository.clone().unwrap_or_else(|| {
        std::fs::canonicalize(&root)
            .unwrap_or_else(|_| root.clone())
            .to_string_lossy()
            .into_owned()
    });
    let keys = policy::state_keys(&records, opts.pin, &scope);
    let mut store = opts.store.clone();
    let snapshot = if keys.is_empty() {
        Some(state::Snapshot::default())
    } else if let Some(shared) = &opts.store {
        match shared.record_and_snapshot(&keys, now) {
            Ok(snap) => Some(snap),
            Err(e) => {
                warnings.push(format!("{e}; references under min_age or a schedule wait"));
                None
            }
        }
    } else {
        match state_path(opts.state.as_deref(), opts.service.as_ref()) {
            None => {
                warnings.push("no state store path (set --state or REPIN_STATE); references under min_age or a schedule wait".into());
                None
            }
            Some(path) => match Store::open(&path)
                .and_then(|s| s.record_and_snapshot(&keys, now).map(|snap| (s, snap)))
            {
                Ok((s, snap)) => {
                    store = Some(Arc::new(s));
                    Some(snap)
                }
                Err(e) => {
                    warnings.push(format!("{e}; references under min_age or a schedule wait"));
                    None
                }
            },
        }
    };
    let change_sets = policy::decide(&mut records, opts.pin, now, snapshot.as_ref(), &scope);
    Ok(Outcome {
        report,
        records,
        change_sets,
        warnings,
        store,
        now,
        scope,
        resolver,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_env_var_names() {
        assert_eq!(
            registry_env_var("ghcr.io", "PASSWORD"),
            "REPIN_REGISTRY_GHCR_IO_PASSWORD"
        );
        assert_eq!(
            registry_env_var("localhost:5000", "USERNAME"),
            "REPIN_REGISTRY_LOCALHOST_5000_USERNAME"
        );
    }
}
