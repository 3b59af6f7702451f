//! The fleet: which repositories a run covers and the GitHub client for each. With a
//! token, the repositories named; as a GitHub App, every installation's repositories,
//! limited by globs (`acme/*`). Either way limited to a [`Shard`] when one is given.
//!
//! App installation clients are kept per installation, so a long-running `serve` reuses
//! each installation token until octocrab refreshes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::app::App;
use super::github::{Error, GitHub};
use crate::git::Identity;
use crate::secret::Secret;
use crate::shard::Shard;

/// One repository and the client that works on it.
#[derive(Clone)]
pub struct Target {
    /// The client for this repository (the token's, or its installation's).
    pub gh: Arc<GitHub>,
    /// `owner/name`.
    pub full_name: String,
}

enum Access {
    /// One client for every repository (each counts its own calls:
    /// [`super::github::counting`]); building one loads the TLS roots.
    Token {
        client: Arc<GitHub>,
    },
    App(Box<App>),
}

/// Who repin acts as, and on which repositories.
pub struct Fleet {
    access: Access,
    /// Token: the repositories; App: globs over the installations' repositories
    /// (empty: all).
    repos: Vec<String>,
    globs: GlobSet,
    shard: Option<Shard>,
    installations: Mutex<HashMap<u64, Arc<GitHub>>>,
}

fn globs(patterns: &[String]) -> Result<GlobSet, Error> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern)
            .map_err(|e| Error::Setup(format!("repository glob {pattern:?}: {e}")))?;
        set.add(glob);
    }
    set.build().map_err(|e| Error::Setup(e.to_string()))
}

impl Fleet {
    /// A token's fleet: exactly `repos` (`owner/name`).
    ///
    /// # Errors
    /// [`Error::Setup`] for a bad URL.
    pub fn token(
        api_url: &str,
        token: &Secret,
        repos: Vec<String>,
        shard: Option<Shard>,
    ) -> Result<Self, Error> {
        // Checks the URL once, up front.
        let client = Arc::new(GitHub::new(api_url, token)?);
        Ok(Self {
            access: Access::Token { client },
            globs: GlobSet::empty(),
            repos,
            shard,
            installations: Mutex::new(HashMap::new()),
        })
    }

    /// An App's fleet: its installations' repositories matching `patterns` (all when
    /// empty).
    ///
    /// # Errors
    /// [`Error::Setup`] for a bad glob.
    pub fn app(app: App, patterns: Vec<String>, shard: Option<Shard>) -> Result<Self, Error> {
        Ok(Self {
            access: Access::App(Box::new(app)),
            globs: globs(&patterns)?,
            repos: patterns,
            shard,
            installations: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the fleet covers a repository: named (token) or matched (App), and in
    /// the shard.
    #[must_use]
    pub fn covers(&self, full_name: &str) -> bool {
        let listed = match &self.access {
            Access::Token { .. } => self.repos.iter().any(|r| r.eq_ignore_ascii_case(full_name)),
            Access::App(_) => self.repos.is_empty() || self.globs.is_match(full_name),
        };
        listed && self.shard.is_none_or(|s| s.contains(full_name))
    }

    /// The commit author by default: the App's `<slug>[bot]`, or `repin[bot]`.
    ///
    /// # Errors
    /// [`Error`] when the App cannot be read.
    pub async fn bot(&self) -> Result<Identity, Error> {
        match &self.access {
            Access::App(app) => app.bot_identity().await,
            Access::Token { .. } => Ok(Identity {
                name: "repin[bot]".into(),
                email: "repin[bot]@users.noreply.github.com".into(),
            }),
        }
    }

    /// Every repository the fleet covers, now.
    ///
    /// # Errors
    /// [`Error`] when the installations or their repositories cannot be listed.
    pub async fn targets(&self) -> Result<Vec<Target>, Error> {
        let mut out = Vec::new();
        match &self.access {
            Access::Token { .. } => {
                for full_name in &self.repos {
                    if let Some(target) = self.target(None, full_name)? {
                        out.push(target);
                    }
                }
            }
            Access::App(app) => {
                for installation in app.installations().await? {
                    out.extend(self.installation_targets(installation.id).await?);
                }
            }
        }
        // Each repository once, however often it was named or listed.
        let mut seen = std::collections::HashSet::new();
        out.retain(|t| seen.insert(t.full_name.to_ascii_lowercase()));
        Ok(out)
    }

    /// Every repository of one App installation the fleet covers.
    ///
    /// # Errors
    /// [`Error`] when its repositories cannot be listed, or this is not an App.
    pub async fn installation_targets(&self, id: u64) -> Result<Vec<Target>, Error> {
        let gh = self.installation(id)?;
        Ok(gh
            .installation_repositories()
            .await?
            .into_iter()
            .filter(|full_name| self.covers(full_name))
            .map(|full_name| Target {
                gh: Arc::clone(&gh),
                full_name,
            })
            .collect())
    }

    /// The target for one repository (of an App installation, when an App), or `None`
    /// when the fleet does not cover it.
    ///
    /// # Errors
    /// [`Error::Setup`]; an App event without an installation.
    pub fn target(
        &self,
        installation: Option<u64>,
        full_name: &str,
    ) -> Result<Option<Target>, Error> {
        if !self.covers(full_name) {
            return Ok(None);
        }
        let gh = match (&self.access, installation) {
            (Access::Token { client, .. }, _) => Arc::clone(client),
            (Access::App(_), Some(id)) => self.installation(id)?,
            (Access::App(_), None) => {
                return Err(Error::Setup(format!(
                    "{full_name}: an App event without an installation"
                )));
            }
        };
        Ok(Some(Target {
            gh,
            full_name: full_name.to_owned(),
        }))
    }

    fn installation(&self, id: u64) -> Result<Arc<GitHub>, Error> {
        let Access::App(app) = &self.access else {
            return Err(Error::Setup("not an App".into()));
        };
        let mut clients = self
            .installations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(gh) = clients.get(&id) {
            return Ok(Arc::clone(gh));
        }
        let gh = Arc::new(app.installation(id)?);
        clients.insert(id, Arc::clone(&gh));
        Ok(gh)
    }
}
