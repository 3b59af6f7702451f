//! The options of the commands that work on GitHub (`run`, `serve`) and of the local
//! jobs (`check`, `update`), resolved from their flags, the environment and the
//! service config: who repin acts as and on which repositories ([`fleet`]), how pull
//! requests are made ([`for_run`]), and what the daemon needs ([`for_serve`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Env, Error, Lookups, RegistryFlags};
use crate::config::{self, ServiceConfig};
use crate::forge::app::App;
use crate::forge::fleet::Fleet;
use crate::forge::run::RunOptions;
use crate::git::Identity;
use crate::job::JobOptions;
use crate::secret::Secret;
use crate::serve::ServeOptions;
use crate::shard::Shard;
use crate::state::Store;

/// The service config, if a path is given (an empty one, as an unset Action input
/// passes, counts as none).
///
/// # Errors
/// [`Error::Config`]: the file cannot be read or is not a valid service config.
pub fn service_config(path: Option<&Path>) -> Result<Option<ServiceConfig>, Error> {
    Ok(path
        .filter(|p| !p.as_os_str().is_empty())
        .map(config::load_service)
        .transpose()?)
}

/// The flags of a local job (`check`, `update`).
#[derive(Debug, Clone, Default)]
pub struct JobFlags {
    /// Files or folders to scan; empty: the current folder.
    pub paths: Vec<PathBuf>,
    /// `--config`: the service config.
    pub config: Option<PathBuf>,
    /// `--state`: the state store.
    pub state: Option<PathBuf>,
    /// `update --pin`: also pin references that have only a tag.
    pub pin: bool,
    /// How to reach registries.
    pub registry: RegistryFlags,
}

/// A job over the flags' paths, with the service config, the state store and the
/// lookups resolved.
///
/// # Errors
/// The service config; credentials ([`Lookups::new`]); the registry client's setup.
pub fn for_job(flags: &JobFlags, env: &Env) -> Result<JobOptions, Error> {
    let service = service_config(flags.config.as_deref())?;
    let resolver = Lookups::new(&flags.registry, env, service.as_ref())?.resolver()?;
    Ok(JobOptions {
        store_path: super::state_path(flags.state.as_deref(), env, service.as_ref()),
        service,
        pin: flags.pin,
        ..JobOptions::new(flags.paths.clone(), resolver)
    })
}

/// Which repositories, as whom.
#[derive(Debug, Clone)]
pub struct FleetFlags {
    /// `--repo`: repositories (token) or globs over the installations' (App).
    pub repos: Vec<String>,
    /// `--app`: act as a GitHub App.
    pub app: bool,
    /// `--app-id` (or `GITHUB_APP_ID`).
    pub app_id: Option<u64>,
    /// `--app-key-file`: a PEM file; else `REPIN_GITHUB_APP_KEY` holds the key.
    pub app_key_file: Option<PathBuf>,
    /// `--token-env`: the variable holding the token.
    pub token_env: String,
    /// `--api-url` (or `GITHUB_API_URL`).
    pub api_url: Option<String>,
    /// `--shard INDEX/COUNT` (0-based index).
    pub shard: Option<String>,
}

/// How pull requests are made.
#[derive(Debug, Clone, Default)]
pub struct PrFlags {
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--commit-via-api`.
    pub commit_via_api: bool,
    /// `--max-open`.
    pub max_open: Option<usize>,
    /// `--author-name`.
    pub author_name: Option<String>,
    /// `--author-email`.
    pub author_email: Option<String>,
}

/// Every flag of `run` (and of `serve`, which runs the same way).
#[derive(Debug, Clone)]
pub struct RunFlags {
    /// Which repositories, as whom.
    pub fleet: FleetFlags,
    /// How pull requests are made.
    pub pr: PrFlags,
    /// `--config`: the service config.
    pub config: Option<PathBuf>,
    /// `--state`: the state store.
    pub state: Option<PathBuf>,
    /// How to reach registries.
    pub registry: RegistryFlags,
    /// `--concurrency`: repositories worked on at once.
    pub concurrency: Option<usize>,
}

/// Who repin acts as and on which repositories: a token and the `--repo`s (else the
/// service config's `[github] repositories`), or the App's installations limited by
/// the `--repo` globs (else the service config's); either way limited to the shard
/// (`--shard`, else `JOB_COMPLETION_INDEX` with `REPIN_SHARD_COUNT`).
///
/// # Errors
/// A missing token, key or App ID; no repositories named with a token; an unreadable
/// key file; a bad shard, glob, URL or key.
pub fn fleet(
    flags: &FleetFlags,
    service: Option<&ServiceConfig>,
    env: &Env,
) -> Result<Fleet, Error> {
    let api_url = super::api_url(flags.api_url.as_deref(), service);
    let repos = if flags.repos.is_empty() {
        service
            .map(|s| s.github.repositories.clone())
            .unwrap_or_default()
    } else {
        flags.repos.clone()
    };
    let shard = Shard::choose(flags.shard.as_deref(), |name| {
        env.get(name).map(str::to_owned)
    })?;
    if !flags.app {
        let token = env
            .get(&flags.token_env)
            .ok_or_else(|| Error::NoToken(flags.token_env.clone()))?;
        if repos.is_empty() {
            return Err(Error::NoRepositories);
        }
        return Ok(Fleet::token(&api_url, &Secret::new(token), repos, shard)?);
    }
    let key_file = flags
        .app_key_file
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    let key = match key_file {
        Some(path) => std::fs::read_to_string(path).map_err(|source| Error::AppKey {
            path: path.clone(),
            source,
        })?,
        None => env
            .get("REPIN_GITHUB_APP_KEY")
            .ok_or(Error::NoAppKey)?
            .to_owned(),
    };
    let app_id = flags.app_id.ok_or(Error::NoAppId)?;
    let app = App::new(&api_url, app_id, &Secret::new(key))?;
    Ok(Fleet::app(app, repos, shard)?)
}

/// `run`'s resolved options: the fleet, the lookups and each repository's settings.
pub struct RunSetup {
    /// Which repositories, as whom.
    pub fleet: Fleet,
    /// How each run's lookups are made.
    pub lookups: Lookups,
    /// Each repository's settings.
    pub options: RunOptions,
    /// When `--deadline` runs out: no repository starts after it.
    pub stop_at: Option<tokio::time::Instant>,
    /// Why the state store could not be opened, if it could not.
    pub store_problem: Option<String>,
    /// Repositories worked on at once: `--concurrency`, else the service config's
    /// `[serve] concurrency`, else 4.
    pub concurrency: usize,
}

/// Resolves `run`'s flags. One set of lookups serves the whole run, so a tag shared by
/// many repositories is asked about once. The author defaults to the fleet's bot (an
/// App's `<slug>[bot]`, else `repin[bot]`), the email to `<name>@users.noreply.github.com`.
///
/// # Errors
/// As [`service_config`], [`fleet`] and [`Lookups::new`]; asking GitHub for the App's
/// bot.
pub async fn for_run(flags: &RunFlags, env: &Env) -> Result<RunSetup, Error> {
    let service = service_config(flags.config.as_deref())?;
    let fleet = fleet(&flags.fleet, service.as_ref(), env)?;
    let lookups = Lookups::new(&flags.registry, env, service.as_ref())?;
    let stop_at = lookups.deadline.map(|d| tokio::time::Instant::now() + d);
    let resolver = lookups.resolver()?;
    let name = match &flags.pr.author_name {
        Some(name) => name.clone(),
        None => fleet.bot().await?.name,
    };
    let email = flags
        .pr
        .author_email
        .clone()
        .unwrap_or_else(|| format!("{name}@users.noreply.github.com"));
    let store_path = super::state_path(flags.state.as_deref(), env, service.as_ref());
    // Opened once for the whole run (a `redb` file opens once per process, and
    // repositories run concurrently); one that cannot be opened is each job's warning.
    let (store, store_problem) = match store_path.as_deref().map(Store::open) {
        Some(Ok(store)) => (Some(Arc::new(store)), None),
        Some(Err(e)) => (
            None,
            Some(format!("{e}; references under min_age or a schedule wait")),
        ),
        None => (None, None),
    };
    let options = RunOptions {
        author: Identity { name, email },
        max_open: super::max_open(flags.pr.max_open, service.as_ref()),
        dry_run: flags.pr.dry_run,
        store_path,
        commit_via_api: super::commit_via_api(flags.pr.commit_via_api, service.as_ref()),
        service,
        resolver,
        store,
    };
    let concurrency = flags
        .concurrency
        .map_or_else(
            || {
                options.service.as_ref().map_or_else(
                    || config::ServeConfig::default().concurrency,
                    |s| s.serve.concurrency,
                )
            },
            |n| n.max(1),
        )
        // As `--concurrency` allows: a config's huge number would be as many threads.
        .min(256);
    Ok(RunSetup {
        fleet,
        lookups,
        options,
        stop_at,
        store_problem,
        concurrency,
    })
}

/// `serve`'s resolved options, where it listens, and what the operator should hear
/// before it starts.
pub struct ServeSetup {
    /// Each repository's settings.
    pub options: ServeOptions,
    /// `--listen`, else the service config's `[serve] listen`, else `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// Warnings for the operator, one line each.
    pub warnings: Vec<String>,
}

/// Resolves `serve`'s flags: `run`'s, plus the state store kept open across runs (a
/// store that cannot be opened is a warning: references under `min_age` or a schedule
/// wait), and the webhook secret (none: webhooks are turned away, a warning).
///
/// # Errors
/// As [`for_run`].
pub async fn for_serve(
    flags: &RunFlags,
    listen: Option<SocketAddr>,
    env: &Env,
    work_dir: PathBuf,
) -> Result<ServeSetup, Error> {
    let RunSetup {
        fleet,
        lookups,
        options: run,
        concurrency,
        store_problem,
        ..
    } = for_run(flags, env).await?;
    let mut config = run
        .service
        .as_ref()
        .map(|s| s.serve.clone())
        .unwrap_or_default();
    config.concurrency = concurrency;
    let mut warnings = Vec::new();
    let store = run.store.clone();
    warnings.extend(store_problem);
    let webhook_secret = super::webhook_secret(env, &config);
    if webhook_secret.is_none() {
        warnings.push(format!(
            "{} is not set; webhooks are turned away",
            config.webhook_secret_env
        ));
        if config.schedule.is_none() && !config.run_at_start {
            warnings.push("no schedule, no webhooks and no run at start: nothing will run".into());
        }
    }
    Ok(ServeSetup {
        listen: listen.unwrap_or(config.listen),
        options: ServeOptions {
            config,
            fleet,
            run,
            lookups,
            store,
            webhook_secret,
            work_dir,
        },
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(repos: &[&str]) -> FleetFlags {
        FleetFlags {
            repos: repos.iter().map(|r| (*r).to_owned()).collect(),
            app: false,
            app_id: None,
            app_key_file: None,
            token_env: "GITHUB_TOKEN".into(),
            api_url: None,
            shard: None,
        }
    }

    /// Which repositories, as whom: flag > service config, and every way it can fail.
    /// (A runtime is needed: GitHub clients are made for the repositories.)
    #[tokio::test]
    async fn fleet_precedence_and_failures() {
        let service =
            crate::config::parse_service("repin.toml", "[github]\nrepositories = [\"svc/repo\"]\n")
                .unwrap();
        let token = Env::from_pairs(&[("GITHUB_TOKEN", "t"), ("MY_TOKEN", "m")]);
        let covers = |flags: &FleetFlags, svc: Option<&ServiceConfig>, env: &Env| {
            let fleet = fleet(flags, svc, env).unwrap();
            ["flag/repo", "svc/repo"].map(|r| fleet.covers(r))
        };
        assert_eq!(
            covers(&flags(&["flag/repo"]), Some(&service), &token),
            [true, false]
        );
        assert_eq!(covers(&flags(&[]), Some(&service), &token), [false, true]);
        let mine = FleetFlags {
            token_env: "MY_TOKEN".into(),
            ..flags(&["flag/repo"])
        };
        assert_eq!(covers(&mine, None, &token), [true, false]);

        let app = FleetFlags {
            app: true,
            ..flags(&[])
        };
        let failures: [(FleetFlags, &Env, &str); 6] = [
            (
                flags(&["a/b"]),
                &Env::default(),
                "environment variable GITHUB_TOKEN is not set",
            ),
            (flags(&[]), &token, "name the repositories"),
            (
                FleetFlags {
                    shard: Some("2/2".into()),
                    ..flags(&["a/b"])
                },
                &token,
                "invalid shard",
            ),
            (
                app.clone(),
                &Env::default(),
                "set --app-key-file or REPIN_GITHUB_APP_KEY",
            ),
            (
                app.clone(),
                &Env::from_pairs(&[("REPIN_GITHUB_APP_KEY", "pem")]),
                "--app needs --app-id",
            ),
            (
                FleetFlags {
                    app_key_file: Some("/nonexistent/app.pem".into()),
                    app_id: Some(1),
                    ..app
                },
                &Env::default(),
                "reading the App key /nonexistent/app.pem",
            ),
        ];
        for (flags, env, want) in failures {
            let err = fleet(&flags, None, env).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.starts_with(want)),
                "{flags:?}: {err:?}"
            );
        }
        let indexed = Env::from_pairs(&[("GITHUB_TOKEN", "t"), ("JOB_COMPLETION_INDEX", "0")]);
        assert!(
            fleet(&flags(&["a/b"]), None, &indexed).is_err(),
            "index without a count"
        );
    }
}
