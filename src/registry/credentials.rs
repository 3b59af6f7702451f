//! Where a registry's credentials come from: fixed ones (the service config's
//! variables), the `REPIN_REGISTRY_<HOST>_USERNAME` / `_PASSWORD` pairs, and Docker's
//! config file with its credential helpers ([`super::dockerconfig`]), in that order.

use std::collections::HashMap;

use super::auth::Credential;
use super::dockerconfig::DockerConfig;
use super::error::Error;
use crate::secret::Secret;

/// Where credentials come from.
#[derive(Debug, Clone, Default)]
pub enum Credentials {
    /// None: anonymous access only.
    #[default]
    Anonymous,
    /// Docker's config file (and the helpers it names).
    Docker(DockerConfig),
    /// Fixed credentials per registry host (service config, tests).
    Fixed(HashMap<String, Credential>),
    /// Fixed credentials first (the service config's variables), then the
    /// `REPIN_REGISTRY_<HOST>_USERNAME` / `_PASSWORD` pairs of `env`, then Docker's config.
    Layered {
        /// Per registry host: the service config's.
        fixed: HashMap<String, Credential>,
        /// `REPIN_REGISTRY_…` variables by name (read once, at the top).
        env: HashMap<String, Secret>,
        /// Docker's config file.
        docker: DockerConfig,
    },
}

/// `REPIN_REGISTRY_<HOST>_<WHAT>`: the host upper-cased, every other character `_`.
#[must_use]
pub fn registry_env_var(host: &str, what: &str) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("REPIN_REGISTRY_{host}_{what}")
}

/// The credential `REPIN_REGISTRY_<HOST>_USERNAME` and `_PASSWORD` give for `registry`.
///
/// # Errors
/// [`Error::Invalid`] when only one of the two is set (never naming the value).
fn env_credential(
    registry: &str,
    env: &HashMap<String, Secret>,
) -> Result<Option<Credential>, Error> {
    let user_var = registry_env_var(registry, "USERNAME");
    let pass_var = registry_env_var(registry, "PASSWORD");
    match (env.get(&user_var), env.get(&pass_var)) {
        (Some(user), Some(password)) => Ok(Some(Credential::Basic {
            username: user.expose().to_owned(),
            password: password.clone(),
        })),
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(Error::Invalid {
            registry: registry.to_owned(),
            what: "credentials",
            why: format!("set both {user_var} and {pass_var}, or neither"),
        }),
    }
}

impl Credentials {
    /// The credential for `registry` (a host, after mirrors), if any.
    ///
    /// # Errors
    /// A half-set `REPIN_REGISTRY_…` pair; a Docker config helper that fails.
    pub async fn get(&self, registry: &str) -> Result<Option<Credential>, Error> {
        match self {
            Self::Anonymous => Ok(None),
            Self::Docker(config) => config.credential(registry).await,
            Self::Fixed(map) => Ok(map.get(registry).cloned()),
            Self::Layered { fixed, env, docker } => match fixed.get(registry) {
                Some(c) => Ok(Some(c.clone())),
                None => match env_credential(registry, env)? {
                    Some(c) => Ok(Some(c)),
                    None => docker.credential(registry).await,
                },
            },
        }
    }
}
