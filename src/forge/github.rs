//! GitHub through `octocrab`: the handful of REST calls `run` makes, on the raw routes
//! with small response types of our own (so a field GitHub adds or drops elsewhere in a
//! model cannot break a run). Every call is counted, for the API budget.
//!
//! GitHub Enterprise Server works through the base URL (`https://ghe.example.com/api/v3`).

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A GitHub failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("GitHub {what}: {message}")]
    Api { what: &'static str, message: String },
    #[error("GitHub client setup: {0}")]
    Setup(String),
}

fn api(what: &'static str) -> impl Fn(octocrab::Error) -> Error {
    move |e| {
        let message = match &e {
            octocrab::Error::GitHub { source, .. } => {
                format!("{} ({})", source.message, source.status_code)
            }
            other => other.to_string(),
        };
        Error::Api { what, message }
    }
}

/// A repository as `run` needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Repo {
    pub full_name: String,
    pub default_branch: String,
    pub clone_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A pull request as `run` needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub head: Head,
}

impl Pull {
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }

    #[must_use]
    pub fn is_merged(&self) -> bool {
        self.merged_at.is_some()
    }
}

/// A new pull request.
#[derive(Debug, Clone, Serialize)]
pub struct NewPull<'a> {
    pub title: &'a str,
    pub head: &'a str,
    pub base: &'a str,
    pub body: &'a str,
    pub draft: bool,
}

/// Where the token for git pushes comes from.
enum GitToken {
    Fixed(Secret),
    /// An App installation's token, which octocrab fetches and refreshes.
    Installation,
}

/// A GitHub client for one token or App installation.
pub struct GitHub {
    client: octocrab::Octocrab,
    calls: AtomicUsize,
    git_token: GitToken,
}

impl GitHub {
    /// A client for `base_url` (`https://api.github.com/` or an Enterprise API URL).
    ///
    /// # Errors
    /// [`Error::Setup`] for a bad URL.
    pub fn new(base_url: &str, token: &Secret) -> Result<Self, Error> {
        let client = octocrab::Octocrab::builder()
            .base_uri(base_url)
            .map_err(|e| Error::Setup(e.to_string()))?
            .personal_token(token.expose().to_owned())
            .build()
            .map_err(|e| Error::Setup(e.to_string()))?;
        Ok(Self {
            client,
            calls: AtomicUsize::new(0),
            git_token: GitToken::Fixed(token.clone()),
        })
    }

    /// A client acting as an App installation (from [`super::app::App::installation`]).
    #[must_use]
    pub fn for_installation(client: octocrab::Octocrab) -> Self {
        Self {
            client,
            calls: AtomicUsize::new(0),
            git_token: GitToken::Installation,
        }
    }

    /// The token for git over HTTPS: the fixed token, or the installation's, refreshed
    /// when it has less than five minutes left.
    ///
    /// # Errors
    /// [`Error::Api`] when an installation token cannot be had.
    pub async fn git_token(&self) -> Result<Secret, Error> {
        match &self.git_token {
            GitToken::Fixed(token) => Ok(token.clone()),
            GitToken::Installation => {
                use secrecy::ExposeSecret as _;
                self.count();
                let token = self
                    .client
                    .installation_token_with_buffer(chrono::Duration::minutes(5))
                    .await
                    .map_err(api("installation token"))?;
                Ok(Secret::new(token.expose_secret()))
            }
        }
    }

    /// The repositories an App installation can reach (`owner/name`).
    ///
    /// # Errors
    /// [`Error::Api`].
    pub async fn installation_repositories(&self) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            full_name: String,
        }
        self.count();
        let page: Page = self
            .client
            .get("/installation/repositories", Some(&[("per_page", "100")]))
            .await
            .map_err(api("list installation repositories"))?;
        Ok(page.repositories.into_iter().map(|r| r.full_name).collect())
    }

    /// API calls made so far.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// # Errors
    /// [`Error::Api`].
    pub async fn repo(&self, full_name: &str) -> Result<Repo, Error> {
        self.count();
        self.client
            .get(format!("/repos/{full_name}"), None::<&()>)
            .await
            .map_err(api("get repository"))
    }

    /// Every pull request of the repository (open and closed), newest first.
    ///
    /// # Errors
    /// [`Error::Api`].
    pub async fn pulls(&self, full_name: &str) -> Result<Vec<Pull>, Error> {
        self.count();
        self.client
            .get(
                format!("/repos/{full_name}/pulls"),
                Some(&[("state", "all"), ("per_page", "100")]),
            )
            .await
            .map_err(api("list pull requests"))
    }

    /// # Errors
    /// [`Error::Api`].
    pub async fn create_pull(&self, full_name: &str, new: &NewPull<'_>) -> Result<Pull, Error> {
        self.count();
        self.client
            .post(format!("/repos/{full_name}/pulls"), Some(new))
            .await
            .map_err(api("create pull request"))
    }

    /// Sets a pull request's title and body, or closes it (`state: "closed"`).
    ///
    /// # Errors
    /// [`Error::Api`].
    pub async fn update_pull(
        &self,
        full_name: &str,
        number: u64,
        patch: &serde_json::Value,
    ) -> Result<Pull, Error> {
        self.count();
        self.client
            .patch(format!("/repos/{full_name}/pulls/{number}"), Some(patch))
            .await
            .map_err(api("update pull request"))
    }

    /// # Errors
    /// [`Error::Api`].
    pub async fn comment(&self, full_name: &str, number: u64, body: &str) -> Result<(), Error> {
        self.count();
        let _: serde_json::Value = self
            .client
            .post(
                format!("/repos/{full_name}/issues/{number}/comments"),
                Some(&serde_json::json!({ "body": body })),
            )
            .await
            .map_err(api("comment"))?;
        Ok(())
    }

    /// The bodies of a pull request's comments.
    ///
    /// # Errors
    /// [`Error::Api`].
    pub async fn comments(&self, full_name: &str, number: u64) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Comment {
            #[serde(default)]
            body: String,
        }
        self.count();
        let comments: Vec<Comment> = self
            .client
            .get(
                format!("/repos/{full_name}/issues/{number}/comments"),
                None::<&()>,
            )
            .await
            .map_err(api("list comments"))?;
        Ok(comments.into_iter().map(|c| c.body).collect())
    }

    /// # Errors
    /// [`Error::Api`].
    pub async fn add_labels(
        &self,
        full_name: &str,
        number: u64,
        labels: &[String],
    ) -> Result<(), Error> {
        self.count();
        let _: serde_json::Value = self
            .client
            .post(
                format!("/repos/{full_name}/issues/{number}/labels"),
                Some(&serde_json::json!({ "labels": labels })),
            )
            .await
            .map_err(api("add labels"))?;
        Ok(())
    }

    /// # Errors
    /// [`Error::Api`].
    pub async fn request_reviewers(
        &self,
        full_name: &str,
        number: u64,
        reviewers: &[String],
        teams: &[String],
    ) -> Result<(), Error> {
        self.count();
        let _: serde_json::Value = self
            .client
            .post(
                format!("/repos/{full_name}/pulls/{number}/requested_reviewers"),
                Some(&serde_json::json!({ "reviewers": reviewers, "team_reviewers": teams })),
            )
            .await
            .map_err(api("request reviewers"))?;
        Ok(())
    }

    /// # Errors
    /// [`Error::Api`].
    pub async fn add_assignees(
        &self,
        full_name: &str,
        number: u64,
        assignees: &[String],
    ) -> Result<(), Error> {
        self.count();
        let _: serde_json::Value = self
            .client
            .post(
                format!("/repos/{full_name}/issues/{number}/assignees"),
                Some(&serde_json::json!({ "assignees": assignees })),
            )
            .await
            .map_err(api("add assignees"))?;
        Ok(())
    }
}
