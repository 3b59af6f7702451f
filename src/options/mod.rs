//! Options resolved once. Every precedence rule between a command-line flag, the
//! environment, the service config and a default lives here; the top of the program
//! applies them once and hands the results down. Below this module the library never
//! reads the process environment: the environment arrives as an [`Env`] snapshot.
//!
//! | what | flag | environment | service config | default |
//! | --- | --- | --- | --- | --- |
//! | state store ([`state_path`]) | `--state` | `REPIN_STATE` | `state` | `$XDG_STATE_HOME/repin/state.redb`, else `$HOME/.local/state/repin/state.redb` |
//! | Docker config ([`docker_config_path`]) | — | `REPIN_DOCKER_CONFIG` | `docker_config` | `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` |
//! | registry credentials ([`credentials`]) | — | `REPIN_REGISTRY_<HOST>_USERNAME` / `_PASSWORD` | `username_env` / `password_env` (variable names) | Docker config |
//! | registry client ([`Lookups::new`]) | `--insecure-registry`, `--timeout`, `--per-registry`, `--deadline` | — | `[registries."HOST"]` `insecure`, `mirror`; `[limits] per_registry` | [`client::Options::default`] |
//! | GitHub API URL ([`api_url`]) | `--api-url` (or `GITHUB_API_URL`, through the flag) | | `[github] api_url` | `https://api.github.com` |
//! | open PR limit ([`max_open`]) | `--max-open` | — | `[github] max_open` | 10 |
//! | commits through the API ([`commit_via_api`]) | `--commit-via-api` | — | `[github] commit_via_api` | off |
//! | webhook secret ([`webhook_secret`]) | — | the variable `[serve] webhook_secret_env` names | | none: webhooks are turned away |
//! | service config ([`service_config`]) | `--config` (or `REPIN_CONFIG`, through the flag) | | | none |
//! | repositories ([`fleet()`]) | `--repo` | | `[github] repositories` | none (a token needs some; an App covers all its installations) |
//! | GitHub token ([`fleet()`]) | `--token-env NAME` names the variable | `GITHUB_TOKEN` | | |
//! | App key ([`fleet()`]) | `--app-key-file` | `REPIN_GITHUB_APP_KEY` | | |
//! | shard ([`fleet()`]) | `--shard INDEX/COUNT` | `JOB_COMPLETION_INDEX` with `REPIN_SHARD_COUNT` | | all repositories |
//! | commit author ([`for_run`]) | `--author-name`, `--author-email` | | | the fleet's bot; `<name>@users.noreply.github.com` |
//! | listen address ([`for_serve`]) | `--listen` | | `[serve] listen` | `0.0.0.0:8080` |
//!
//! A flag's own environment fallback (`GITHUB_API_URL`, `GITHUB_APP_ID`,
//! `REPIN_CONFIG`, …) is clap's, and counts as the flag. Empty variables count as unset.

mod fleet;

pub use fleet::{
    FleetFlags, JobFlags, PrFlags, RunFlags, RunSetup, ServeSetup, fleet, for_job, for_run,
    for_serve, service_config,
};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{ServeConfig, ServiceConfig};
use crate::registry::auth::Credential;
use crate::registry::client::{self, Client};
use crate::registry::credentials::{Credentials, registry_env_var};
use crate::registry::dockerconfig::DockerConfig;
use crate::registry::resolve::Resolver;
use crate::secret::Secret;

/// The process environment, read once: non-empty, UTF-8 variables by name.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

/// Values may be secrets: only the names are shown.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// The process's environment, now.
    #[must_use]
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().filter(|(_, v)| !v.is_empty()).collect(),
        }
    }

    /// An environment of these pairs (tests; empty values count as unset).
    #[must_use]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            vars: pairs
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A variable's value, when set and not empty.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }
}

/// Why options could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("registry {registry}: environment variable {var} is not set")]
    /// A variable the service config names for a registry's credentials is not set.
    MissingEnv {
        /// The registry host.
        registry: String,
        /// The variable's name.
        var: String,
    },
    /// The registry client could not be set up.
    #[error(transparent)]
    Registry(#[from] crate::registry::Error),
    /// The service config is not valid.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// The shard is not valid.
    #[error(transparent)]
    Shard(#[from] crate::shard::Error),
    /// GitHub: the client, the App, or its bot identity.
    #[error(transparent)]
    GitHub(#[from] crate::forge::github::Error),
    /// The variable holding the GitHub token is not set.
    #[error("environment variable {0} is not set")]
    NoToken(String),
    #[error(
        "name the repositories: --repo OWNER/NAME, or [github] repositories in the service config"
    )]
    /// A token needs repositories named.
    NoRepositories,
    /// The App key file could not be read.
    #[error("reading the App key {}", path.display())]
    AppKey {
        /// The key file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// `--app` without a key.
    #[error("set --app-key-file or REPIN_GITHUB_APP_KEY")]
    NoAppKey,
    /// `--app` without an App ID.
    #[error("--app needs --app-id (or GITHUB_APP_ID)")]
    NoAppId,
}

/// The state store: `--state`, `REPIN_STATE`, the service config's `state`, then the
/// user's state folder. `None` when not even `HOME` is known.
#[must_use]
pub fn state_path(
    flag: Option<&Path>,
    env: &Env,
    service: Option<&ServiceConfig>,
) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| env.path("REPIN_STATE"))
        .or_else(|| service.and_then(|s| s.state.clone()))
        .or_else(|| {
            env.path("XDG_STATE_HOME")
                .map(|d| d.join("repin/state.redb"))
        })
        .or_else(|| {
            env.path("HOME")
                .map(|h| h.join(".local/state/repin/state.redb"))
        })
}

/// Docker's config file for credentials: `REPIN_DOCKER_CONFIG`, the service config's
/// `docker_config`, then where Docker looks (`$DOCKER_CONFIG/config.json`,
/// `$HOME/.docker/config.json`).
#[must_use]
pub fn docker_config_path(env: &Env, service: Option<&ServiceConfig>) -> Option<PathBuf> {
    env.path("REPIN_DOCKER_CONFIG")
        .or_else(|| service.and_then(|s| s.docker_config.clone()))
        .or_else(|| env.path("DOCKER_CONFIG").map(|d| d.join("config.json")))
        .or_else(|| env.path("HOME").map(|h| h.join(".docker/config.json")))
}

/// Registry credentials: for each registry the service config names, its
/// `REPIN_REGISTRY_<HOST>_…` pair, else the variables it names; for any other
/// registry, its `REPIN_REGISTRY_<HOST>_…` pair; then Docker's config.
///
/// # Errors
/// [`Error::MissingEnv`] for a variable the service config names that is not set; a
/// Docker config that cannot be read.
pub fn credentials(env: &Env, service: Option<&ServiceConfig>) -> Result<Credentials, Error> {
    let mut fixed = HashMap::new();
    if let Some(service) = service {
        for (host, r) in &service.registries {
            let named = |var: &Option<String>| var.as_deref().and_then(|v| env.get(v));
            let user = env
                .get(&registry_env_var(host, "USERNAME"))
                .or_else(|| named(&r.username_env));
            let pass = env
                .get(&registry_env_var(host, "PASSWORD"))
                .or_else(|| named(&r.password_env));
            match (user, pass) {
                (Some(username), Some(password)) => {
                    fixed.insert(
                        host.clone(),
                        Credential::Basic {
                            username: username.to_owned(),
                            password: Secret::new(password),
                        },
                    );
                }
                (_, None) if r.password_env.is_some() => {
                    return Err(Error::MissingEnv {
                        registry: host.clone(),
                        var: r.password_env.clone().unwrap_or_default(),
                    });
                }
                (None, Some(_)) if r.username_env.is_some() => {
                    return Err(Error::MissingEnv {
                        registry: host.clone(),
                        var: r.username_env.clone().unwrap_or_default(),
                    });
                }
                _ => {}
            }
        }
    }
    let prefixed = env
        .vars
        .iter()
        .filter(|(k, _)| k.starts_with("REPIN_REGISTRY_"))
        .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
        .collect();
    let docker = match docker_config_path(env, service) {
        Some(path) => DockerConfig::load(&path)?,
        None => DockerConfig::default(),
    };
    Ok(Credentials::Layered {
        fixed,
        env: prefixed,
        docker,
    })
}

/// The registry flags, as the command line gives them.
#[derive(Debug, Clone, Default)]
pub struct RegistryFlags {
    /// `--insecure-registry` hosts.
    pub insecure: Vec<String>,
    /// Seconds per request (at least 1).
    pub timeout: Option<u64>,
    /// `--per-registry`: concurrent requests per registry.
    pub per_registry: Option<usize>,
    /// Seconds for all of a command's (or, in `serve`, each run's) lookups.
    pub deadline: Option<u64>,
}

/// How to make a set of lookups: the client's options and credentials, resolved.
/// `serve` makes a fresh set per run (a tag is asked about again each time); the
/// `--deadline` is counted from when each set is made.
#[derive(Debug, Clone)]
pub struct Lookups {
    /// The client's options.
    pub client: client::Options,
    /// Where credentials come from.
    pub credentials: Credentials,
    /// `--deadline`: the time all of a set's lookups may take.
    pub deadline: Option<Duration>,
}

impl Lookups {
    /// Flags over the service config over the defaults.
    ///
    /// # Errors
    /// As [`credentials`].
    pub fn new(
        flags: &RegistryFlags,
        env: &Env,
        service: Option<&ServiceConfig>,
    ) -> Result<Self, Error> {
        let mut client = client::Options::default();
        if let Some(service) = service {
            for (host, r) in &service.registries {
                if r.insecure {
                    client.insecure.push(host.clone());
                }
                if let Some(mirror) = &r.mirror {
                    client.mirrors.insert(host.clone(), mirror.clone());
                }
            }
            if let Some(n) = service.per_registry {
                client.per_registry = n;
            }
        }
        client.insecure.extend(flags.insecure.iter().cloned());
        if let Some(t) = flags.timeout {
            client.timeout = Duration::from_secs(t.max(1));
        }
        if let Some(n) = flags.per_registry {
            client.per_registry = n.max(1);
        }
        Ok(Self {
            client,
            credentials: credentials(env, service)?,
            deadline: flags.deadline.map(Duration::from_secs),
        })
    }

    /// A fresh set of lookups; the deadline, if any, starts now.
    ///
    /// # Errors
    /// The client's setup.
    pub fn resolver(&self) -> Result<Arc<Resolver>, crate::registry::Error> {
        let mut options = self.client.clone();
        options.deadline = self.deadline.map(|d| tokio::time::Instant::now() + d);
        let client = Client::new(options, self.credentials.clone())?;
        Ok(Resolver::new(Arc::new(client)))
    }
}

/// The GitHub API: `--api-url` (or `GITHUB_API_URL`), the service config's, GitHub's.
#[must_use]
pub fn api_url(flag: Option<&str>, service: Option<&ServiceConfig>) -> String {
    flag.filter(|f| !f.trim().is_empty())
        .map(str::to_owned)
        .or_else(|| service.and_then(|s| s.github.api_url.clone()))
        .unwrap_or_else(|| "https://api.github.com".to_owned())
}

/// Open repin pull requests per repository: `--max-open`, the service config's, 10.
#[must_use]
pub fn max_open(flag: Option<usize>, service: Option<&ServiceConfig>) -> usize {
    flag.or_else(|| service.and_then(|s| s.github.max_open))
        .unwrap_or(10)
}

/// Whether commits go through the Git Data API: the flag, or the service config.
#[must_use]
pub fn commit_via_api(flag: bool, service: Option<&ServiceConfig>) -> bool {
    flag || service
        .and_then(|s| s.github.commit_via_api)
        .unwrap_or(false)
}

/// The webhook secret: the variable the `[serve]` config names; `None` turns webhooks
/// away.
#[must_use]
pub fn webhook_secret(env: &Env, serve: &ServeConfig) -> Option<Secret> {
    env.get(&serve.webhook_secret_env).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(text: &str) -> ServiceConfig {
        crate::config::parse_service("repin.toml", text).unwrap()
    }

    #[test]
    fn state_path_precedence() {
        let svc = service("state = \"/svc/state.redb\"\n");
        let env = Env::from_pairs(&[
            ("REPIN_STATE", "/env/state.redb"),
            ("XDG_STATE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        let flag = Some(Path::new("/flag/state.redb"));
        type Case<'a> = (
            Option<&'a Path>,
            &'a Env,
            Option<&'a ServiceConfig>,
            Option<&'a str>,
        );
        let cases: [Case<'_>; 6] = [
            (flag, &env, Some(&svc), Some("/flag/state.redb")),
            (None, &env, Some(&svc), Some("/env/state.redb")),
            (
                None,
                &Env::from_pairs(&[("REPIN_STATE", ""), ("HOME", "/home/u")]),
                Some(&svc),
                Some("/svc/state.redb"),
            ),
            (
                None,
                &Env::from_pairs(&[("XDG_STATE_HOME", "/xdg"), ("HOME", "/home/u")]),
                None,
                Some("/xdg/repin/state.redb"),
            ),
            (
                None,
                &Env::from_pairs(&[("HOME", "/home/u")]),
                None,
                Some("/home/u/.local/state/repin/state.redb"),
            ),
            (None, &Env::default(), None, None),
        ];
        for (flag, env, svc, expected) in cases {
            assert_eq!(
                state_path(flag, env, svc),
                expected.map(PathBuf::from),
                "{flag:?} {env:?}"
            );
        }
    }

    #[test]
    fn docker_config_precedence() {
        let svc = service("docker_config = \"/svc/config.json\"\n");
        let all = Env::from_pairs(&[
            ("REPIN_DOCKER_CONFIG", "/repin/config.json"),
            ("DOCKER_CONFIG", "/docker"),
            ("HOME", "/home/u"),
        ]);
        let no_repin = Env::from_pairs(&[("DOCKER_CONFIG", "/docker"), ("HOME", "/home/u")]);
        let home = Env::from_pairs(&[("HOME", "/home/u")]);
        for (env, svc, expected) in [
            (&all, Some(&svc), Some("/repin/config.json")),
            (&no_repin, Some(&svc), Some("/svc/config.json")),
            (&no_repin, None, Some("/docker/config.json")),
            (&home, None, Some("/home/u/.docker/config.json")),
            (&Env::default(), None, None),
        ] {
            assert_eq!(
                docker_config_path(env, svc),
                expected.map(PathBuf::from),
                "{env:?}"
            );
        }
    }

    #[test]
    fn github_settings_precedence() {
        let svc = service(
            "[github]\napi_url = \"https://ghe.example/api/v3\"\nmax_open = 3\ncommit_via_api = true\n",
        );
        assert_eq!(api_url(Some("https://flag"), Some(&svc)), "https://flag");
        assert_eq!(api_url(None, Some(&svc)), "https://ghe.example/api/v3");
        assert_eq!(api_url(None, None), "https://api.github.com");
        assert_eq!(max_open(Some(5), Some(&svc)), 5);
        assert_eq!(max_open(None, Some(&svc)), 3);
        assert_eq!(max_open(None, None), 10);
        assert!(commit_via_api(false, Some(&svc)));
        assert!(commit_via_api(true, None));
        assert!(!commit_via_api(false, None));
    }

    #[test]
    fn registry_client_precedence() {
        let svc = service(
            "[limits]\nper_registry = 3\n[registries.\"lan:5000\"]\ninsecure = true\n[registries.\"docker.io\"]\nmirror = \"mirror.example\"\n",
        );
        let env = Env::default();
        let flags = RegistryFlags::default();
        let l = Lookups::new(&flags, &env, Some(&svc)).unwrap();
        assert_eq!(l.client.per_registry, 3);
        assert_eq!(l.client.insecure, vec!["lan:5000"]);
        assert_eq!(l.client.mirrors["docker.io"], "mirror.example");
        assert_eq!(l.client.timeout, Duration::from_secs(30));
        let flags = RegistryFlags {
            insecure: vec!["other:1".into()],
            timeout: Some(0),
            per_registry: Some(0),
            deadline: Some(9),
        };
        let l = Lookups::new(&flags, &env, Some(&svc)).unwrap();
        assert_eq!(l.client.per_registry, 1);
        assert_eq!(l.client.insecure, vec!["lan:5000", "other:1"]);
        assert_eq!(l.client.timeout, Duration::from_secs(1));
        assert_eq!(l.deadline, Some(Duration::from_secs(9)));
    }

    #[test]
    fn credentials_precedence() {
        let svc = service(
            "[registries.\"ghcr.io\"]\nusername_env = \"GH_USER\"\npassword_env = \"GH_PASS\"\n",
        );
        let basic = |c: &Credentials, host: &str| match c {
            Credentials::Layered { fixed, .. } => match fixed.get(host) {
                Some(Credential::Basic { username, password }) => {
                    Some((username.clone(), password.expose().to_owned()))
                }
                _ => None,
            },
            _ => None,
        };
        let named = Env::from_pairs(&[("GH_USER", "u1"), ("GH_PASS", "p1")]);
        let c = credentials(&named, Some(&svc)).unwrap();
        assert_eq!(basic(&c, "ghcr.io"), Some(("u1".into(), "p1".into())));
        // The REPIN_REGISTRY_ pair wins over the named variables.
        let both = Env::from_pairs(&[
            ("GH_USER", "u1"),
            ("GH_PASS", "p1"),
            ("REPIN_REGISTRY_GHCR_IO_USERNAME", "u2"),
            ("REPIN_REGISTRY_GHCR_IO_PASSWORD", "p2"),
        ]);
        let c = credentials(&both, Some(&svc)).unwrap();
        assert_eq!(basic(&c, "ghcr.io"), Some(("u2".into(), "p2".into())));
        // A named variable that is not set is an error naming it.
        let err = credentials(&Env::from_pairs(&[("GH_USER", "u1")]), Some(&svc)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "registry ghcr.io: environment variable GH_PASS is not set"
        );
        // Without a service config, the pair still reaches the client.
        let alone = Env::from_pairs(&[
            ("REPIN_REGISTRY_QUAY_IO_USERNAME", "u3"),
            ("REPIN_REGISTRY_QUAY_IO_PASSWORD", "p3"),
        ]);
        match credentials(&alone, None).unwrap() {
            Credentials::Layered { env, .. } => {
                assert_eq!(env["REPIN_REGISTRY_QUAY_IO_PASSWORD"].expose(), "p3");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn webhook_secret_from_the_named_variable() {
        let serve = ServeConfig::default();
        let env = Env::from_pairs(&[(serve.webhook_secret_env.as_str(), "s3cret")]);
        assert_eq!(webhook_secret(&env, &serve).unwrap().expose(), "s3cret");
        assert!(webhook_secret(&Env::default(), &serve).is_none());
    }

    #[test]
    fn env_debug_shows_names_only() {
        let env = Env::from_pairs(&[("TOKEN", "hunter2")]);
        let shown = format!("{env:?}");
        assert!(
            shown.contains("TOKEN") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
