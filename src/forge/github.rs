//! GitHub through `octocrab`: the handful of REST calls `run` makes, on the raw routes
//! with small response types of our own (so a field GitHub adds or drops elsewhere in a
//! model cannot break a run). Every call is counted, for the API budget.
//!
//! GitHub Enterprise Server works through the base URL (`https://ghe.example.com/api/v3`).
//! Rate limits (primary and secondary) are waited out on every call, bounded; see
//! [`rate_limit_wait`]. Lists follow GitHub's `Link: <…>; rel="next"` pages up to a
//! bound ([`MAX_PAGES`] of 100 items: the 1,000 most recent pull requests, comments;
//! installations' repositories up to [`MAX_REPOSITORY_PAGES`]). Failures are typed
//! ([`Error`]): not found, rate limited, another status, a lease that does not hold,
//! GraphQL, transport, an answer that does not parse.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// A GitHub failure. `what` names the call (`list pull requests`, `create branch`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("GitHub {what}: {message} (404)")]
    /// GitHub answered 404.
    NotFound {
        /// The call (`list pull requests`).
        what: &'static str,
        /// GitHub's message.
        message: String,
    },
    #[error(
        "GitHub {what}: rate limited (HTTP {status}), reset in {reset_secs}s; gave up after {attempts} attempts"
    )]
    /// Rate limited past the patience of [`MAX_RATE_LIMIT_WAIT`] and the attempts.
    RateLimited {
        /// The call (`list pull requests`).
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// Seconds until the limit resets, as GitHub said.
        reset_secs: u64,
        /// Attempts made, the first included.
        attempts: u32,
    },
    /// Another error status.
    #[error("GitHub {what}: {message} ({status})")]
    Status {
        /// The call (`list pull requests`).
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// A branch is not where the lease says: someone else moved it.
    #[error("GitHub update branch: refusing to move {branch}: it is at {at}, not {expected}")]
    LeaseMismatch {
        /// The branch.
        branch: String,
        /// Where it is (`(absent)`).
        at: String,
        /// Where the lease says it should be.
        expected: String,
    },
    #[error("GitHub {what}: {message}")]
    /// A GraphQL error (inside a 200 answer).
    GraphQl {
        /// The call (`list pull requests`).
        what: &'static str,
        /// GitHub's message.
        message: String,
    },
    /// No answer (connection, TLS, timeout) or one octocrab could not read.
    #[error("GitHub {what}: {message}")]
    Transport {
        /// The call (`list pull requests`).
        what: &'static str,
        /// GitHub's message.
        message: String,
    },
    #[error("GitHub {what}: unexpected response: {message}")]
    /// An answer that does not parse as expected.
    Decode {
        /// The call (`list pull requests`).
        what: &'static str,
        /// GitHub's message.
        message: String,
    },
    /// The client could not be set up (a bad URL or key).
    #[error("GitHub client setup: {0}")]
    Setup(String),
}

impl Error {
    /// Whether GitHub answered 404.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// An error status with GitHub's message.
    fn status(what: &'static str, status: u16, message: String) -> Self {
        if status == 404 {
            Self::NotFound { what, message }
        } else {
            Self::Status {
                what,
                status,
                message,
            }
        }
    }
}

/// Maps an octocrab error: GitHub's own answers by status, everything else transport.
fn api(what: &'static str) -> impl Fn(octocrab::Error) -> Error {
    move |e| match &e {
        octocrab::Error::GitHub { source, .. } => {
            Error::status(what, source.status_code.as_u16(), source.message.clone())
        }
        other => Error::Transport {
            what,
            message: other.to_string(),
        },
    }
}

/// How long one GitHub call may take, answer included; past it the call fails as
/// [`Error::Transport`] (a GitHub that does not answer must not hold a repository, or
/// `serve`'s slot, for ever).
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One attempt's answer: headers and body of a success, or the status, headers and
/// body of an error answer.
type Answer = Result<(http::HeaderMap, String), (http::StatusCode, http::HeaderMap, String)>;

/// Pages of 100 followed for a list (the 1,000 most recent items).
pub const MAX_PAGES: usize = 10;
/// Pages of 100 followed for an installation's repositories (10,000 repositories).
pub const MAX_REPOSITORY_PAGES: usize = 100;

/// Whether a `Link` header names a next page.
fn has_next_page(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|link| {
            link.split(';')
                .skip(1)
                .any(|param| param.trim().replace(' ', "") == "rel=\"next\"")
        })
}

/// GitHub's message in an error answer (`message`, `detail`, validation errors), else
/// the first 300 characters of the body.
fn message_of(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            let message = v["message"].as_str().or(v["title"].as_str())?.to_owned();
            let detail = v["detail"].as_str().map(|d| format!(": {d}"));
            let errors = v.get("validation").map(|e| format!(" {e}"));
            Some(message + &detail.unwrap_or_default() + &errors.unwrap_or_default())
        })
        .unwrap_or_else(|| text.chars().take(300).collect())
}

/// `route` asking for page `page` (1-based) of 100.
fn paged(route: &str, page: usize) -> String {
    let sep = if route.contains('?') { '&' } else { '?' };
    format!("{route}{sep}per_page=100&page={page}")
}

/// API calls made by every client of this process (for `/metrics`).
static PROCESS_CALLS: AtomicU64 = AtomicU64::new(0);
/// The last `x-ratelimit-remaining` GitHub sent to any client; -1 before the first.
static RATE_LIMIT_REMAINING: AtomicI64 = AtomicI64::new(-1);

/// Process-wide figures for `/metrics`: API calls made, and the rate limit remaining
/// in the last response (`None` before any).
#[must_use]
pub fn process_stats() -> (u64, Option<i64>) {
    let remaining = RATE_LIMIT_REMAINING.load(Ordering::Relaxed);
    (
        PROCESS_CALLS.load(Ordering::Relaxed),
        (remaining >= 0).then_some(remaining),
    )
}

/// Longest wait for a rate limit to reset before a call gives up.
pub const MAX_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
/// Attempts per call when rate limited.
const RATE_LIMIT_ATTEMPTS: u32 = 3;

/// How long to wait before retrying a rate-limited response, `None` if it is not one.
/// `now` is Unix seconds.
#[must_use]
pub fn rate_limit_wait(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    now: i64,
) -> Option<std::time::Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let limited = status == http::StatusCode::TOO_MANY_REQUESTS
        || (status == http::StatusCode::FORBIDDEN && (exhausted || retry_after.is_some()));
    if !limited {
        return None;
    }
    if let Some(secs) = retry_after {
        return Some(std::time::Duration::from_secs(secs));
    }
    let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok());
    // Secondary limits without headers: GitHub asks for at least a minute.
    Some(std::time::Duration::from_secs(reset.map_or(60, |r| {
        u64::try_from(r.saturating_sub(now))
            .unwrap_or(0)
            .saturating_add(1)
    })))
}

tokio::task_local! {
    /// Calls made inside [`counting`], whichever client made them.
    static TASK_CALLS: std::sync::Arc<AtomicUsize>;
}

/// Runs `work`, adding every GitHub API call it makes to `calls` (repositories that
/// share a client run concurrently; each counts its own).
pub async fn counting<F: Future>(calls: std::sync::Arc<AtomicUsize>, work: F) -> F::Output {
    TASK_CALLS.scope(calls, work).await
}

/// A repository as `run` needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct Repo {
    /// `owner/name`.
    pub full_name: String,
    /// The default branch (`main`).
    pub default_branch: String,
    /// The HTTPS clone URL (no credentials).
    pub clone_url: String,
}

/// A pull request's head: its branch and the commit at its tip (GitHub's `head`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullHead {
    /// The branch.
    #[serde(rename = "ref")]
    pub branch: String,
    /// The commit at the branch's tip (hex).
    pub sha: String,
}

/// A pull request as `run` needs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pull {
    /// The pull request's number.
    pub number: u64,
    /// The GraphQL ID (auto-merge is GraphQL-only).
    #[serde(default)]
    pub node_id: String,
    /// GitHub's state: `open` or `closed`.
    pub state: String,
    /// When it was merged (RFC 3339), if it was.
    #[serde(default)]
    pub merged_at: Option<String>,
    /// The title.
    #[serde(default)]
    pub title: String,
    /// The body (Markdown), if any.
    #[serde(default)]
    pub body: Option<String>,
    /// The head branch and its tip.
    pub head: PullHead,
}

impl Pull {
    /// Whether the pull request is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }

    /// Whether it was merged (closed pull requests may not be).
    #[must_use]
    pub fn is_merged(&self) -> bool {
        self.merged_at.is_some()
    }
}

/// A new pull request.
#[derive(Debug, Clone, Serialize)]
pub struct NewPull<'a> {
    /// The title.
    pub title: &'a str,
    /// The head branch and its tip.
    pub head: &'a str,
    /// The branch it goes into.
    pub base: &'a str,
    /// The body (Markdown), if any.
    pub body: &'a str,
    /// Open as a draft.
    pub draft: bool,
}

/// Where the token for git pushes comes from.
enum GitToken {
    Fixed(Secret),
    /// An App installation's token, which octocrab fetches and refreshes.
    Installation,
    /// The App itself (a JWT): no git access.
    App,
}

/// A GitHub client for one token or App installation.
pub struct GitHub {
    client: octocrab::Octocrab,
    /// The API's base URL, as given.
    base_url: String,
    calls: AtomicUsize,
    git_token: GitToken,
    /// How long one call may take, answer body included ([`CALL_TIMEOUT`]).
    timeout: std::time::Duration,
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
            base_url: base_url.to_owned(),
            calls: AtomicUsize::new(0),
            timeout: CALL_TIMEOUT,
            git_token: GitToken::Fixed(token.clone()),
        })
    }

    /// A client acting as an App installation (from [`super::app::App::installation`])
    /// on the API at `base_url`.
    #[must_use]
    pub fn for_installation(client: octocrab::Octocrab, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.to_owned(),
            calls: AtomicUsize::new(0),
            timeout: CALL_TIMEOUT,
            git_token: GitToken::Installation,
        }
    }

    /// A client acting as the App itself (its JWT), for the App's own routes, on the
    /// API at `base_url`.
    #[must_use]
    pub fn for_app(client: octocrab::Octocrab, base_url: &str) -> Self {
        Self {
            client,
            base_url: base_url.to_owned(),
            calls: AtomicUsize::new(0),
            timeout: CALL_TIMEOUT,
            git_token: GitToken::App,
        }
    }

    /// The token for git over HTTPS: the fixed token, or the installation's, refreshed
    /// when it has less than five minutes left.
    ///
    /// # Errors
    /// [`Error`] when an installation token cannot be had.
    pub async fn git_token(&self) -> Result<Secret, Error> {
        match &self.git_token {
            GitToken::Fixed(token) => Ok(token.clone()),
            GitToken::App => Err(Error::Setup(
                "the App itself has no git access; use an installation".into(),
            )),
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
    /// [`Error`].
    pub async fn installation_repositories(&self) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Page {
            repositories: Vec<Named>,
        }
        #[derive(Deserialize)]
        struct Named {
            full_name: String,
        }
        self.pages(
            "list installation repositories",
            "/installation/repositories",
            MAX_REPOSITORY_PAGES,
            |page: Page| page.repositories.into_iter().map(|r| r.full_name).collect(),
            |name| name.to_ascii_lowercase(),
        )
        .await
    }

    /// The same client with another per-call timeout (tests use short ones).
    #[must_use]
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Which GitHub this client talks to: its API's base URL, lower-cased, without a
    /// trailing `/` (what is kept per repository is kept per forge too).
    #[must_use]
    pub fn forge(&self) -> String {
        self.base_url.trim_end_matches('/').to_ascii_lowercase()
    }

    /// API calls made so far.
    #[must_use]
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        PROCESS_CALLS.fetch_add(1, Ordering::Relaxed);
        let _ = TASK_CALLS.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
    }

    /// One REST call, with GitHub's rate limits honoured: a 429, or a 403 that says the
    /// primary or secondary limit was hit, waits for `Retry-After` or until
    /// `x-ratelimit-reset`, up to [`MAX_RATE_LIMIT_WAIT`] (longer fails at once), then
    /// tries again (at most [`RATE_LIMIT_ATTEMPTS`] times). Returns the answer's
    /// headers and body.
    async fn exchange(
        &self,
        what: &'static str,
        method: http::Method,
        route: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(http::HeaderMap, String), Error> {
        self.exchange_if(what, method, route, body, None)
            .await?
            .ok_or_else(|| Error::status(what, 304, "Not Modified".into()))
    }

    /// [`GitHub::exchange`], conditional on `etag` when one is given: `None` when
    /// GitHub answers `304 Not Modified` (which does not count against its rate
    /// limit).
    async fn exchange_if(
        &self,
        what: &'static str,
        method: http::Method,
        route: &str,
        body: Option<&serde_json::Value>,
        etag: Option<&str>,
    ) -> Result<Option<(http::HeaderMap, String)>, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.count();
            let answer =
                tokio::time::timeout(self.timeout, self.attempt(what, &method, route, body, etag))
                    .await
                    .map_err(|_| Error::Transport {
                        what,
                        message: format!("no answer in {} s", self.timeout.as_secs_f32()),
                    })??;
            let (status, headers, text) = match answer {
                Ok(done) => return Ok(Some(done)),
                Err((status, _, _)) if status == http::StatusCode::NOT_MODIFIED => {
                    return Ok(None);
                }
                Err(failed) => failed,
            };
            let wait = rate_limit_wait(status, &headers, chrono::Utc::now().timestamp());
            match wait {
                Some(wait) if wait <= MAX_RATE_LIMIT_WAIT && attempt < RATE_LIMIT_ATTEMPTS => {
                    tracing::warn!(
                        what,
                        wait_secs = wait.as_secs(),
                        "GitHub rate limit; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                Some(wait) => {
                    return Err(Error::RateLimited {
                        what,
                        status: status.as_u16(),
                        reset_secs: wait.as_secs(),
                        attempts: attempt,
                    });
                }
                None => return Err(Error::status(what, status.as_u16(), message_of(&text))),
            }
        }
    }

    /// One attempt of a call: `Ok(Ok((headers, body)))` for a success,
    /// `Ok(Err((status, headers, body)))` for an error answer.
    async fn attempt(
        &self,
        what: &'static str,
        method: &http::Method,
        route: &str,
        body: Option<&serde_json::Value>,
        etag: Option<&str>,
    ) -> Result<Answer, Error> {
        let conditional = etag
            .and_then(|e| http::HeaderValue::from_str(e).ok())
            .map(|e| {
                let mut headers = http::HeaderMap::new();
                headers.insert(http::header::IF_NONE_MATCH, e);
                headers
            });
        let response = match *method {
            http::Method::POST => self.client._post(route, body).await,
            http::Method::PATCH => self.client._patch(route, body).await,
            _ => self.client._get_with_headers(route, conditional).await,
        }
        .map_err(api(what))?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(remaining) = headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok()?.trim().parse::<i64>().ok())
        {
            RATE_LIMIT_REMAINING.store(remaining, Ordering::Relaxed);
        }
        if status.is_success() {
            let text = self
                .client
                .body_to_string(response)
                .await
                .map_err(api(what))?;
            return Ok(Ok((headers, text)));
        }
        let text = self
            .client
            .body_to_string(response)
            .await
            .unwrap_or_default();
        Ok(Err((status, headers, text)))
    }

    /// One REST call ([`GitHub::exchange`]), its answer parsed.
    pub(crate) async fn call<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        method: http::Method,
        route: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let (_, text) = self.exchange(what, method, route, body).await?;
        serde_json::from_str(&text).map_err(|e| Error::Decode {
            what,
            message: e.to_string(),
        })
    }

    /// Every page of a list (`GET`, 100 a page, at most `max_pages`), each page's
    /// items taken out by `items`, each item once by `key` (page-number paging shifts
    /// when the list changes while it is read, so an item may come twice).
    pub(crate) async fn pages<T, K, P>(
        &self,
        what: &'static str,
        route: &str,
        max_pages: usize,
        items: impl Fn(P) -> Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> Result<Vec<T>, Error>
    where
        K: Eq + std::hash::Hash,
        P: serde::de::DeserializeOwned,
    {
        self.pages_after(what, route, max_pages, items, key, None)
            .await
    }

    /// [`GitHub::pages`], the first page's answer already in hand when given.
    async fn pages_after<T, K, P>(
        &self,
        what: &'static str,
        route: &str,
        max_pages: usize,
        items: impl Fn(P) -> Vec<T>,
        key: impl Fn(&T) -> K,
        mut first: Option<(http::HeaderMap, String)>,
    ) -> Result<Vec<T>, Error>
    where
        K: Eq + std::hash::Hash,
        P: serde::de::DeserializeOwned,
    {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for page in 1..=max_pages {
            let (headers, text) = match first.take() {
                Some(answer) => answer,
                None => {
                    self.exchange(what, http::Method::GET, &paged(route, page), None)
                        .await?
                }
            };
            let parsed: P = serde_json::from_str(&text).map_err(|e| Error::Decode {
                what,
                message: e.to_string(),
            })?;
            out.extend(
                items(parsed)
                    .into_iter()
                    .filter(|item| seen.insert(key(item))),
            );
            if !has_next_page(&headers) {
                break;
            }
            if page == max_pages {
                tracing::warn!(
                    what,
                    max_pages,
                    "more pages than read; the rest is not seen"
                );
            }
        }
        Ok(out)
    }

    /// # Errors
    /// [`Error`].
    pub async fn repo(&self, full_name: &str) -> Result<Repo, Error> {
        self.call(
            "get repository",
            http::Method::GET,
            &format!("/repos/{full_name}"),
            None,
        )
        .await
    }

    /// The repository's pull requests (open and closed), newest first: the
    /// [`MAX_PAGES`] × 100 most recent (older closed ones are in the state store's
    /// declined records when a webhook saw them close).
    ///
    /// # Errors
    /// [`Error`] of any page.
    pub async fn pulls(&self, full_name: &str) -> Result<Vec<Pull>, Error> {
        let route = format!("/repos/{full_name}/pulls?state=all");
        self.pages(
            "list pull requests",
            &route,
            MAX_PAGES,
            |page: Vec<Pull>| page,
            |pull| pull.number,
        )
        .await
    }

    /// The repository's pull requests as [`GitHub::pulls`] lists them, asked with the
    /// validator of an earlier answer (`etag`): `None` when nothing changed since (GitHub
    /// answers `304 Not Modified`, free of its rate limit, and no bodies come again).
    /// Otherwise the list, and its validator when the list fits one page (a validator
    /// covers only the page it came with).
    ///
    /// # Errors
    /// [`Error`] of any page.
    pub async fn pulls_if_changed(
        &self,
        full_name: &str,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<Pull>, Option<String>)>, Error> {
        const WHAT: &str = "list pull requests";
        let route = format!("/repos/{full_name}/pulls?state=all");
        let Some((headers, text)) = self
            .exchange_if(WHAT, http::Method::GET, &paged(&route, 1), None, etag)
            .await?
        else {
            return Ok(None);
        };
        if has_next_page(&headers) {
            let all = self
                .pages_after(
                    WHAT,
                    &route,
                    MAX_PAGES,
                    |page: Vec<Pull>| page,
                    |pull| pull.number,
                    Some((headers, text)),
                )
                .await?;
            return Ok(Some((all, None)));
        }
        let pulls: Vec<Pull> = serde_json::from_str(&text).map_err(|e| Error::Decode {
            what: WHAT,
            message: e.to_string(),
        })?;
        let etag = headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Some((pulls, etag)))
    }

    /// # Errors
    /// [`Error`].
    pub async fn create_pull(&self, full_name: &str, new: &NewPull<'_>) -> Result<Pull, Error> {
        let body = serde_json::to_value(new).unwrap_or_default();
        self.call(
            "create pull request",
            http::Method::POST,
            &format!("/repos/{full_name}/pulls"),
            Some(&body),
        )
        .await
    }

    /// Sets a pull request's title and body, or closes it (`state: "closed"`).
    ///
    /// # Errors
    /// [`Error`].
    pub async fn update_pull(
        &self,
        full_name: &str,
        number: u64,
        patch: &serde_json::Value,
    ) -> Result<Pull, Error> {
        let route = format!("/repos/{full_name}/pulls/{number}");
        self.call(
            "update pull request",
            http::Method::PATCH,
            &route,
            Some(patch),
        )
        .await
    }

    /// # Errors
    /// [`Error`].
    pub async fn comment(&self, full_name: &str, number: u64, body: &str) -> Result<(), Error> {
        let route = format!("/repos/{full_name}/issues/{number}/comments");
        let body = serde_json::json!({ "body": body });
        let _: serde_json::Value = self
            .call("comment", http::Method::POST, &route, Some(&body))
            .await?;
        Ok(())
    }

    /// The bodies of a pull request's comments.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn comments(&self, full_name: &str, number: u64) -> Result<Vec<String>, Error> {
        #[derive(Deserialize)]
        struct Comment {
            id: u64,
            #[serde(default)]
            body: String,
        }
        let route = format!("/repos/{full_name}/issues/{number}/comments");
        self.pages(
            "list comments",
            &route,
            MAX_PAGES,
            |page: Vec<Comment>| page.into_iter().map(|c| (c.id, c.body)).collect(),
            |(id, _)| *id,
        )
        .await
        .map(|comments| comments.into_iter().map(|(_, body)| body).collect())
    }

    /// # Errors
    /// [`Error`].
    pub async fn add_labels(
        &self,
        full_name: &str,
        number: u64,
        labels: &[String],
    ) -> Result<(), Error> {
        let route = format!("/repos/{full_name}/issues/{number}/labels");
        let body = serde_json::json!({ "labels": labels });
        let _: serde_json::Value = self
            .call("add labels", http::Method::POST, &route, Some(&body))
            .await?;
        Ok(())
    }

    /// # Errors
    /// [`Error`].
    pub async fn request_reviewers(
        &self,
        full_name: &str,
        number: u64,
        reviewers: &[String],
        teams: &[String],
    ) -> Result<(), Error> {
        let route = format!("/repos/{full_name}/pulls/{number}/requested_reviewers");
        let body = serde_json::json!({ "reviewers": reviewers, "team_reviewers": teams });
        let _: serde_json::Value = self
            .call("request reviewers", http::Method::POST, &route, Some(&body))
            .await?;
        Ok(())
    }

    /// # Errors
    /// [`Error`].
    pub async fn add_assignees(
        &self,
        full_name: &str,
        number: u64,
        assignees: &[String],
    ) -> Result<(), Error> {
        let route = format!("/repos/{full_name}/issues/{number}/assignees");
        let body = serde_json::json!({ "assignees": assignees });
        let _: serde_json::Value = self
            .call("add assignees", http::Method::POST, &route, Some(&body))
            .await?;
        Ok(())
    }
}

impl GitHub {
    /// Turns on GitHub's auto-merge for a pull request (squash): it merges itself once
    /// its checks and reviews pass. GraphQL only; the repository must allow auto-merge.
    ///
    /// # Errors
    /// [`Error`], including GraphQL errors (`auto-merge is not allowed`).
    pub async fn enable_auto_merge(&self, node_id: &str) -> Result<(), Error> {
        let body = serde_json::json!({
            "query": "mutation($id: ID!) { enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH}) { pullRequest { number } } }",
            "variables": { "id": node_id },
        });
        let answer: serde_json::Value = self
            .call(
                "enable auto-merge",
                http::Method::POST,
                "/graphql",
                Some(&body),
            )
            .await?;
        match answer
            .get("errors")
            .and_then(|e| e.as_array())
            .and_then(|e| e.first())
        {
            Some(error) => Err(Error::GraphQl {
                what: "enable auto-merge",
                message: error["message"]
                    .as_str()
                    .unwrap_or("GraphQL error")
                    .to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// A file for [`GitHub::commit_via_api`]: path, mode (`100644`, `100755`), content.
pub type ApiFile = (String, String, Vec<u8>);

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

impl GitHub {
    /// Makes a commit through the Git Data API (blobs, a tree on top of `base_tree`, the
    /// commit), so that GitHub signs it: for repositories that require signed commits.
    /// Returns the commit's SHA; no branch moves.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn commit_via_api(
        &self,
        full_name: &str,
        parent: &str,
        base_tree: &str,
        files: &[ApiFile],
        message: &str,
    ) -> Result<String, Error> {
        use base64::Engine as _;
        let mut entries = Vec::new();
        for (path, mode, content) in files {
            let body = serde_json::json!({
                "content": base64::engine::general_purpose::STANDARD.encode(content),
                "encoding": "base64",
            });
            let blob: Sha = self
                .call(
                    "create blob",
                    http::Method::POST,
                    &format!("/repos/{full_name}/git/blobs"),
                    Some(&body),
                )
                .await?;
            entries.push(
                serde_json::json!({"path": path, "mode": mode, "type": "blob", "sha": blob.sha}),
            );
        }
        let body = serde_json::json!({"base_tree": base_tree, "tree": entries});
        let tree: Sha = self
            .call(
                "create tree",
                http::Method::POST,
                &format!("/repos/{full_name}/git/trees"),
                Some(&body),
            )
            .await?;
        let body = serde_json::json!({"message": message, "tree": tree.sha, "parents": [parent]});
        let commit: Sha = self
            .call(
                "create commit",
                http::Method::POST,
                &format!("/repos/{full_name}/git/commits"),
                Some(&body),
            )
            .await?;
        Ok(commit.sha)
    }

    /// Points `branch` at `sha` if it is where the lease says (`None`: absent). The REST
    /// API has no compare-and-swap, so the branch is read first; the window between the
    /// read and the write is the price of API commits.
    ///
    /// # Errors
    /// [`Error`], and a lease that does not hold.
    pub async fn set_branch(
        &self,
        full_name: &str,
        branch: &crate::git::OwnBranch,
        sha: &str,
        lease: Option<&str>,
    ) -> Result<(), Error> {
        let branch = branch.as_str();
        let current = self.branch_sha(full_name, branch).await?;
        if current.as_deref() != lease {
            return Err(Error::LeaseMismatch {
                branch: branch.to_owned(),
                at: current.as_deref().unwrap_or("(absent)").to_owned(),
                expected: lease.unwrap_or("(absent)").to_owned(),
            });
        }
        let _: serde_json::Value = if current.is_none() {
            let body = serde_json::json!({"ref": format!("refs/heads/{branch}"), "sha": sha});
            self.call(
                "create branch",
                http::Method::POST,
                &format!("/repos/{full_name}/git/refs"),
                Some(&body),
            )
            .await?
        } else {
            let body = serde_json::json!({"sha": sha, "force": true});
            let route = format!("/repos/{full_name}/git/refs/heads/{branch}");
            self.call("update branch", http::Method::PATCH, &route, Some(&body))
                .await?
        };
        Ok(())
    }

    /// The SHA a branch points at, `None` when it does not exist.
    ///
    /// # Errors
    /// [`Error`] other than "not found".
    pub async fn branch_sha(&self, full_name: &str, branch: &str) -> Result<Option<String>, Error> {
        #[derive(Deserialize)]
        struct Ref {
            object: Sha,
        }
        let route = format!("/repos/{full_name}/git/ref/heads/{branch}");
        match self
            .call::<Ref>("get branch", http::Method::GET, &route, None)
            .await
        {
            Ok(r) => Ok(Some(r.object.sha)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A commit's author (name, email), through the Git Data API.
    ///
    /// # Errors
    /// [`Error`].
    pub async fn commit_author(
        &self,
        full_name: &str,
        sha: &str,
    ) -> Result<(String, String), Error> {
        #[derive(Deserialize)]
        struct Commit {
            author: Person,
        }
        #[derive(Deserialize)]
        struct Person {
            name: String,
            email: String,
        }
        let route = format!("/repos/{full_name}/git/commits/{sha}");
        let commit: Commit = self
            .call("get commit", http::Method::GET, &route, None)
            .await?;
        Ok((commit.author.name, commit.author.email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn next_pages_from_link_headers() {
        let next = r#"<https://api.github.com/repositories/1/pulls?page=2>; rel="next", <https://api.github.com/repositories/1/pulls?page=5>; rel="last""#;
        let last = r#"<https://api.github.com/repositories/1/pulls?page=1>; rel="prev", <https://api.github.com/repositories/1/pulls?page=1>; rel="first""#;
        for (value, want) in [(next, true), (last, false), ("", false)] {
            let mut h = http::HeaderMap::new();
            if !value.is_empty() {
                h.insert(http::header::LINK, value.parse().unwrap());
            }
            assert_eq!(has_next_page(&h), want, "{value}");
        }
        assert_eq!(
            paged("/r/pulls?state=all", 2),
            "/r/pulls?state=all&per_page=100&page=2"
        );
        assert_eq!(
            paged("/app/installations", 1),
            "/app/installations?per_page=100&page=1"
        );
    }

    #[test]
    fn errors_are_typed_by_status() {
        assert!(Error::status("get branch", 404, "Not Found".into()).is_not_found());
        let e = Error::status("create pull request", 422, "Validation Failed".into());
        assert!(!e.is_not_found());
        assert_eq!(
            e.to_string(),
            "GitHub create pull request: Validation Failed (422)"
        );
        assert_eq!(
            message_of(r#"{"message": "Bad", "detail": "why"}"#),
            "Bad: why"
        );
        assert_eq!(message_of("<html>oops</html>"), "<html>oops</html>");
    }

    #[test]
    fn rate_limit_waits() {
        use std::time::Duration;
        let now = 1_000;
        let wait = |status: u16, h: &[(&'static str, &str)]| {
            rate_limit_wait(
                http::StatusCode::from_u16(status).unwrap(),
                &headers(h),
                now,
            )
        };
        assert_eq!(
            wait(429, &[("retry-after", "7")]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            wait(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1030")
                ]
            ),
            Some(Duration::from_secs(31))
        );
        assert_eq!(
            wait(403, &[("retry-after", "2")]),
            Some(Duration::from_secs(2))
        );
        assert_eq!(wait(429, &[]), Some(Duration::from_secs(60)));
        // GitHub's numbers are checked: extreme resets neither overflow nor panic.
        assert_eq!(
            wait(429, &[("x-ratelimit-reset", "-9223372036854775808")]),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            wait(429, &[("x-ratelimit-reset", "9223372036854775807")]),
            Some(Duration::from_secs(9_223_372_036_854_774_808))
        );
        assert_eq!(
            wait(429, &[("retry-after", "18446744073709551615")]),
            Some(Duration::from_secs(u64::MAX))
        );
        // A 403 that is about permissions is not a rate limit.
        assert_eq!(wait(403, &[("x-ratelimit-remaining", "4999")]), None);
        assert_eq!(wait(404, &[]), None);
    }
}
