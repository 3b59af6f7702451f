//! The registry HTTP client: one request at a time, done right. Transport choice, auth
//! (challenge once per registry, a token per scope, single-flight), retries, size caps,
//! and digest checks live here; deduplication and caching of lookups live in
//! [`super::resolve`].
//!
//! Built on `reqwest` rather than `oci-client`: `oci-client` pings and authenticates per
//! operation and image (a challenge per repository, and no shared token cache across
//! repositories), which breaks the request budget of one challenge per registry; and its
//! single error type cannot tell a missing tag from a rate limit from a bad digest the
//! way [`Error`] does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use tokio::sync::{OnceCell, Semaphore};

use super::auth::{self, Challenge, Credential, Token};
use super::dockerconfig::DockerConfig;
use super::error::Error;
use super::manifest::{ACCEPT_ANY, MAX_MANIFEST_BYTES, checked_digest};
use crate::imageref::{DOCKER_HUB, Digest};
use crate::secret::Secret;

/// How the client behaves; the defaults suit real registries, tests shorten the times.
#[derive(Debug, Clone)]
pub struct Options {
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per request, first included, for 429, 5xx, timeouts and connection errors.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt up to `backoff_cap`.
    pub backoff: Duration,
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured; a longer one fails the request at once.
    pub max_retry_after: Duration,
    /// Concurrent requests per registry.
    pub per_registry: usize,
    /// Hosts reached over plain HTTP (besides loopback, which always is).
    pub insecure: Vec<String>,
    /// Registries looked up through another host (`docker.io` → `mirror.example.com`);
    /// files keep the original name. Transport, auth and credentials follow the mirror.
    pub mirrors: HashMap<String, String>,
    /// When every lookup must be done (`--deadline`): no request starts, and no wait
    /// lasts, past it; each request's timeout is cut to what is left.
    pub deadline: Option<tokio::time::Instant>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            per_registry: 8,
            insecure: Vec::new(),
            mirrors: HashMap::new(),
            deadline: None,
        }
    }
}

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
        fixed: HashMap<String, Credential>,
        /// `REPIN_REGISTRY_…` variables by name (read once, at the top).
        env: HashMap<String, Secret>,
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
    async fn get(&self, registry: &str) -> Result<Option<Credential>, Error> {
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

/// What a `HEAD` on a manifest told: the manifest's digest (checked against the
/// reference grammar) and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub digest: Digest,
    pub media_type: Option<String>,
    /// The manifest's bytes, when the registry sent no `Docker-Content-Digest` and the
    /// manifest had to be read (and hashed) to learn its digest: kept so that it is not
    /// fetched a second time.
    pub body: Option<std::sync::Arc<[u8]>>,
}

/// A manifest read with `GET`: the exact bytes and their verified digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: Option<String>,
}

/// A manifest read in full stands for a `HEAD` of it, its bytes kept.
impl From<Fetched> for Head {
    fn from(fetched: Fetched) -> Self {
        Self {
            digest: fetched.digest,
            media_type: fetched.media_type,
            body: Some(fetched.bytes.into()),
        }
    }
}

/// The `Docker-Content-Digest` header, checked; `None` when absent.
fn content_digest(registry: &str, response: &reqwest::Response) -> Result<Option<Digest>, Error> {
    header_str(response, "docker-content-digest")
        .map(|value| {
            checked_digest("Docker-Content-Digest header", &value).map_err(|why| {
                Error::NotADigest {
                    registry: registry.to_owned(),
                    why,
                }
            })
        })
        .transpose()
}

/// Per-registry state: what it asks for, its tokens, its concurrency limit.
struct RegistryState {
    challenge: OnceCell<Challenge>,
    credential: OnceCell<Option<Credential>>,
    /// One cell per scope, so concurrent lookups in a repository share one token fetch.
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Token>>>>>,
    permits: Semaphore,
    /// Set once a `HEAD` came back without `Docker-Content-Digest`: this registry's
    /// manifests are then read with one `GET` each, not a useless `HEAD` first.
    no_digest_header: std::sync::atomic::AtomicBool,
    /// Why this registry was given up on for the rest of the run (it does not answer,
    /// or its rate limit does not lift): every later request fails with it at once,
    /// instead of each tag spending its own attempts.
    gave_up: Mutex<Option<String>>,
    /// No request to this registry starts before this (a 429's `Retry-After`, else the
    /// backoff): its tags wait together.
    paused_until: Mutex<Option<tokio::time::Instant>>,
    /// 429 answers in a row from this registry, whichever request got them; a success
    /// resets it. At `max_attempts` the registry is given up on.
    throttled: std::sync::atomic::AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A registry client shared by every lookup of a run.
pub struct Client {
    http: reqwest::Client,
    options: Options,
    credentials: Credentials,
    registries: Mutex<HashMap<String, Arc<RegistryState>>>,
}

/// Whether a host is reached over plain HTTP: loopback always, as Docker does.
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let name = host
        .strip_prefix('[')
        .and_then(|h| h.split_once(']'))
        .map_or_else(|| host.split(':').next().unwrap_or(host), |(h, _)| h);
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether plain HTTP may be used to reach `host` (`name[:port]`): loopback always, and
/// the hosts named with `--insecure-registry` (or `insecure = true`).
#[must_use]
pub fn plain_http_allowed(host: &str, insecure: &[String]) -> bool {
    is_loopback(host) || insecure.iter().any(|h| h == host)
}

/// The `host[:port]` of a URL, as references and `--insecure-registry` write it.
fn authority(url: &reqwest::Url) -> String {
    // `host_str` writes IPv6 addresses in brackets, as references do.
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Whether a redirect from `from` to `to` may be followed: never from HTTPS to plain
/// HTTP, and to plain HTTP only where plain HTTP is allowed at all. (`reqwest` already
/// drops `Authorization` when a redirect changes host.)
///
/// # Errors
/// Why not, naming both schemes and the target host.
pub fn redirect_allowed(
    from: &reqwest::Url,
    to: &reqwest::Url,
    insecure: &[String],
) -> Result<(), String> {
    match (from.scheme(), to.scheme()) {
        (_, "https") => Ok(()),
        ("https", "http") => Err(format!(
            "refused a redirect from HTTPS to plain HTTP ({})",
            authority(to)
        )),
        (_, "http") if plain_http_allowed(&authority(to), insecure) => Ok(()),
        (_, "http") => Err(format!(
            "refused a redirect to plain HTTP ({}); name it with --insecure-registry if that is intended",
            authority(to)
        )),
        (_, other) => Err(format!("refused a redirect to a {other}: URL")),
    }
}

/// Whether a token realm may be used for a registry reached at `base`: HTTPS always;
/// plain HTTP only when the registry itself is reached over plain HTTP, and the realm's
/// host may be too (loopback, `--insecure-registry`) or is the registry's own host name
/// (a token server beside an insecure registry). An HTTPS registry's credentials and
/// tokens never travel over plain HTTP, not even to a loopback host.
///
/// # Errors
/// Why not, naming the realm's host.
pub fn realm_allowed(
    base: &reqwest::Url,
    realm: &str,
    insecure: &[String],
) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(realm).map_err(|_| {
        format!(
            "token realm {} is not a URL",
            crate::imageref::shorten(realm)
        )
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http"
            if base.scheme() == "http"
                && (plain_http_allowed(&authority(&url), insecure)
                    || base.host_str() == url.host_str()) =>
        {
            Ok(url)
        }
        "http" => Err(format!(
            "refused the token realm on {} over plain HTTP: credentials and tokens travel only over HTTPS",
            authority(&url)
        )),
        other => Err(format!("refused a token realm with scheme {other:?}")),
    }
}

impl Client {
    /// # Errors
    /// [`Error::Invalid`] when the TLS stack cannot be set up.
    pub fn new(options: Options, credentials: Credentials) -> Result<Self, Error> {
        let insecure = options.insecure.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("too many redirects");
            }
            let from = attempt.previous().last().cloned();
            match from.map(|from| redirect_allowed(&from, attempt.url(), &insecure)) {
                Some(Err(why)) => attempt.error(why),
                _ => attempt.follow(),
            }
        });
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .redirect(redirects)
            .user_agent(concat!("repin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid {
                registry: "(all)".into(),
                what: "HTTP client setup",
                why: e.to_string(),
            })?;
        Ok(Self {
            http,
            options,
            credentials,
            registries: Mutex::new(HashMap::new()),
        })
    }

    /// The host a registry's lookups go to: its mirror, or itself.
    fn endpoint<'a>(&'a self, registry: &'a str) -> &'a str {
        self.options
            .mirrors
            .get(registry)
            .map_or(registry, String::as_str)
    }

    /// The base URL of a registry's API (`https://registry-1.docker.io` for Docker Hub),
    /// through its mirror when it has one.
    #[must_use]
    pub fn base_url(&self, registry: &str) -> String {
        let registry = self.endpoint(registry);
        let host = if registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let plain = plain_http_allowed(registry, &self.options.insecure);
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    fn state(&self, registry: &str) -> Arc<RegistryState> {
        let registry = self.endpoint(registry);
        let mut map = self
            .registries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(registry.to_owned())
            .or_insert_with(|| {
                Arc::new(RegistryState {
                    challenge: OnceCell::new(),
                    credential: OnceCell::new(),
                    tokens: Mutex::new(HashMap::new()),
                    permits: Semaphore::new(self.options.per_registry.max(1)),
                    no_digest_header: std::sync::atomic::AtomicBool::new(false),
                    gave_up: Mutex::new(None),
                    paused_until: Mutex::new(None),
                    throttled: std::sync::atomic::AtomicU32::new(0),
                })
            })
            .clone()
    }

    /// `HEAD` a manifest by tag or digest.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a missing tag; see [`Error`] for the rest. A response
    /// without `Docker-Content-Digest` is read with `GET` and hashed instead (and from
    /// then on, this registry's manifests are read with `GET` straight away).
    pub async fn head_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Head, Error> {
        use std::sync::atomic::Ordering;
        let state = self.state(registry);
        if state.no_digest_header.load(Ordering::Relaxed) {
            return Ok(self
                .get_manifest(registry, repository, reference)
                .await?
                .into());
        }
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(
                registry,
                repository,
                Method::HEAD,
                &path,
                ACCEPT_ANY,
                reference,
            )
            .await?;
        let media_type = header_str(&response, CONTENT_TYPE);
        match content_digest(registry, &response)? {
            Some(digest) => Ok(Head {
                digest,
                media_type,
                body: None,
            }),
            None => {
                state.no_digest_header.store(true, Ordering::Relaxed);
                Ok(self
                    .get_manifest(registry, repository, reference)
                    .await?
                    .into())
            }
        }
    }

    /// `GET` a manifest; its digest is computed over the exact bytes and must agree with
    /// the registry's header and, when fetched by digest, with the digest asked for.
    ///
    /// # Errors
    /// [`Error::DigestMismatch`], [`Error::TooLarge`], and the request errors.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<Fetched, Error> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(
                registry,
                repository,
                Method::GET,
                &path,
                ACCEPT_ANY,
                reference,
            )
            .await?;
        let media_type = header_str(&response, CONTENT_TYPE);
        let header = content_digest(registry, &response)?;
        let bytes = read_capped(registry, response, "manifest", self.options.timeout).await?;
        // Both the header and the digest asked for (when fetched by digest) must hold,
        // each under its own algorithm; the manifest is then named by the one asked for,
        // else the header's, else its SHA-256.
        let asked = reference.parse::<Digest>().ok();
        for expected in [&header, &asked].into_iter().flatten() {
            if !expected.matches(&bytes) {
                return Err(Error::DigestMismatch {
                    registry: registry.to_owned(),
                    expected: expected.to_string(),
                    computed: Digest::of(expected.algorithm(), &bytes).to_string(),
                });
            }
        }
        let digest = asked
            .or(header)
            .unwrap_or_else(|| Digest::sha256_of(&bytes));
        Ok(Fetched {
            bytes,
            digest,
            media_type,
        })
    }

    /// `GET` a blob (an image config) by digest, verified against that digest.
    ///
    /// # Errors
    /// As [`Client::get_manifest`].
    pub async fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Vec<u8>, Error> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(
                registry,
                repository,
                Method::GET,
                &path,
                "*/*",
                &digest.to_string(),
            )
            .await?;
        let bytes = read_capped(registry, response, "config blob", self.options.timeout).await?;
        if !digest.matches(&bytes) {
            return Err(Error::DigestMismatch {
                registry: registry.to_owned(),
                expected: digest.to_string(),
                computed: Digest::of(digest.algorithm(), &bytes).to_string(),
            });
        }
        Ok(bytes)
    }

    /// Sends one request with auth and retries; returns a 2xx response.
    async fn send(
        &self,
        registry: &str,
        repository: &str,
        method: Method,
        path: &str,
        accept: &str,
        reference: &str,
    ) -> Result<reqwest::Response, Error> {
        let state = self.state(registry);
        let _permit = state.permits.acquire().await.map_err(|_| Error::Invalid {
            registry: registry.to_owned(),
            what: "client state",
            why: "closed".into(),
        })?;
        self.gate(registry, &state).await?;
        let challenge = self.challenge(registry, &state).await?;
        let url = format!("{}{path}", self.base_url(registry));
        let mut refreshed_token = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let authorization = self
                .authorization(registry, repository, &state, &challenge)
                .await?;
            let timeout = self.gate(registry, &state).await?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .timeout(timeout)
                .header(ACCEPT, accept);
            if let Some(value) = &authorization {
                request = request.header(AUTHORIZATION, value.expose());
            }
            tracing::debug!(registry, %method, path, attempt, "request");
            let outcome = request.send().await;
            super::stats::record(outcome.as_ref().ok().map(reqwest::Response::status));
            let retry = match outcome {
                Ok(response) => {
                    let status = response.status();
                    if status != StatusCode::TOO_MANY_REQUESTS {
                        state
                            .throttled
                            .store(0, std::sync::atomic::Ordering::Relaxed);
                    }
                    if status.is_success() {
                        return Ok(response);
                    }
                    match status {
                        StatusCode::NOT_FOUND => {
                            return Err(Error::NotFound {
                                registry: registry.to_owned(),
                                repository: repository.to_owned(),
                                reference: reference.to_owned(),
                            });
                        }
                        StatusCode::UNAUTHORIZED
                            if matches!(challenge, Challenge::Bearer { .. })
                                && !refreshed_token =>
                        {
                            // The token may have expired early; fetch a fresh one once.
                            refreshed_token = true;
                            self.forget_token(&state, repository);
                            attempt -= 1;
                            continue;
                        }
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(Error::Unauthorized {
                                registry: registry.to_owned(),
                                status: status.as_u16(),
                            });
                        }
                        _ => match self.transient_status(registry, &state, attempt, &response) {
                            Some(wait) => wait?,
                            None => {
                                return Err(Error::Status {
                                    registry: registry.to_owned(),
                                    status: status.as_u16(),
                                });
                            }
                        },
                    }
                }
                Err(e) => self.transient_error(registry, &state, attempt, timeout, e)?,
            };
            tracing::debug!(
                registry,
                path,
                attempt,
                wait_ms = retry.as_millis() as u64,
                "retrying"
            );
            self.wait(registry, retry).await?;
        }
    }

    /// Before any request to a registry: fails at once if the registry was given up on
    /// or the deadline passed; waits out a registry-wide pause; returns the timeout for
    /// the request (cut to the time left before the deadline).
    async fn gate(&self, registry: &str, state: &RegistryState) -> Result<Duration, Error> {
        let gave_up = || {
            lock(&state.gave_up).clone().map(|why| Error::GaveUp {
                registry: registry.to_owned(),
                why,
            })
        };
        if let Some(e) = gave_up() {
            return Err(e);
        }
        let pause = *lock(&state.paused_until);
        if let Some(until) = pause
            && until > tokio::time::Instant::now()
        {
            self.wait(registry, until - tokio::time::Instant::now())
                .await?;
            if let Some(e) = gave_up() {
                return Err(e);
            }
        }
        match self.options.deadline {
            None => Ok(self.options.timeout),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::Deadline {
                        registry: registry.to_owned(),
                    });
                }
                Ok(self.options.timeout.min(left))
            }
        }
    }

    /// Sleeps `wait`, unless that would pass the deadline: then fails when it comes.
    async fn wait(&self, registry: &str, wait: Duration) -> Result<(), Error> {
        let until = tokio::time::Instant::now() + wait;
        match self.options.deadline {
            Some(deadline) if deadline < until => {
                tokio::time::sleep_until(deadline).await;
                Err(Error::Deadline {
                    registry: registry.to_owned(),
                })
            }
            _ => {
                tokio::time::sleep_until(until).await;
                Ok(())
            }
        }
    }

    /// Records that a registry is given up on for the rest of the run, and why.
    fn give_up(state: &RegistryState, e: Error) -> Error {
        let mut slot = lock(&state.gave_up);
        if slot.is_none() {
            // Every variant's message starts with the registry; GaveUp names it once.
            let message = e.to_string();
            let why = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, why)| why);
            *slot = Some(why.to_owned());
        }
        e
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.options.backoff * factor).min(self.options.backoff_cap)
    }

    /// The registry's challenge, learned once with `GET /v2/` (retried like any request).
    async fn challenge(&self, registry: &str, state: &RegistryState) -> Result<Challenge, Error> {
        state
            .challenge
            .get_or_try_init(|| async {
                let url = format!("{}/v2/", self.base_url(registry));
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let timeout = self.gate(registry, state).await?;
                    let wait = match self.http.get(&url).timeout(timeout).send().await {
                        Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                            let header = header_str(&r, WWW_AUTHENTICATE).unwrap_or_default();
                            return auth::parse_challenge(&header).map_err(|why| Error::Invalid {
                                registry: registry.to_owned(),
                                what: "auth challenge",
                                why,
                            });
                        }
                        // Some registries answer 404 on /v2/ but serve manifests openly.
                        Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_FOUND => {
                            return Ok(Challenge::None);
                        }
                        Ok(r) => match self.transient_status(registry, state, attempt, &r) {
                            Some(wait) => wait?,
                            None => {
                                return Err(Error::Status {
                                    registry: registry.to_owned(),
                                    status: r.status().as_u16(),
                                });
                            }
                        },
                        Err(e) => self.transient_error(registry, state, attempt, timeout, e)?,
                    };
                    self.wait(registry, wait).await?;
                }
            })
            .await
            .cloned()
    }

    /// For a 429 or 5xx: how long to wait before the next attempt, or the error once
    /// attempts (or patience, for a long `Retry-After`) run out. `None` for any other
    /// status, which is not worth retrying.
    fn transient_status(
        &self,
        registry: &str,
        state: &RegistryState,
        attempt: u32,
        response: &reqwest::Response,
    ) -> Option<Result<Duration, Error>> {
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The limit is the registry's, not this request's: every tag of the
            // registry waits, and the registry's 429s in a row count against one budget.
            let retry_after = retry_after(response);
            let in_a_row = state
                .throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            if retry_after.is_some_and(|d| d > self.options.max_retry_after)
                || attempt >= self.options.max_attempts
                || in_a_row >= self.options.max_attempts
            {
                return Some(Err(Self::give_up(
                    state,
                    Error::RateLimited {
                        registry: registry.to_owned(),
                        retry_after,
                        attempts: attempt,
                    },
                )));
            }
            let wait = retry_after.unwrap_or_else(|| self.backoff(in_a_row));
            let until = tokio::time::Instant::now() + wait;
            let mut paused = lock(&state.paused_until);
            *paused = Some(paused.map_or(until, |p| p.max(until)));
            return Some(Ok(wait));
        }
        if !status.is_server_error() {
            return None;
        }
        Some(if attempt >= self.options.max_attempts {
            Err(Error::Server {
                registry: registry.to_owned(),
                status: status.as_u16(),
                attempts: attempt,
            })
        } else {
            Ok(self.backoff(attempt))
        })
    }

    /// For a request that got no response: wait and retry timeouts and connection
    /// errors until the attempts run out; anything else fails at once.
    fn transient_error(
        &self,
        registry: &str,
        state: &RegistryState,
        attempt: u32,
        timeout: Duration,
        e: reqwest::Error,
    ) -> Result<Duration, Error> {
        let last = attempt >= self.options.max_attempts;
        if e.is_redirect() {
            // The policy's reason is the innermost message.
            return Err(Error::Insecure {
                registry: registry.to_owned(),
                why: super::error::root_cause(&e),
            });
        }
        if let Some(tls) = tls_failure(&e) {
            // A handshake fails the same way every time: no retries.
            return Err(Error::Tls {
                registry: registry.to_owned(),
                plain_http: matches!(
                    tls,
                    rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
                ),
                why: tls.to_string(),
            });
        }
        if e.is_timeout() {
            if last {
                // A registry that does not answer is given up on once, not per tag.
                return Err(Self::give_up(
                    state,
                    Error::Timeout {
                        registry: registry.to_owned(),
                        timeout,
                        attempts: attempt,
                    },
                ));
            }
            return Ok(self.backoff(attempt));
        }
        if last || !(e.is_connect() || e.is_request()) {
            let e = Error::Transport {
                registry: registry.to_owned(),
                attempts: attempt,
                source: e.without_url(),
            };
            return Err(if last { Self::give_up(state, e) } else { e });
        }
        Ok(self.backoff(attempt))
    }

    async fn credential(
        &self,
        registry: &str,
        state: &RegistryState,
    ) -> Result<Option<Credential>, Error> {
        state
            .credential
            .get_or_try_init(|| self.credentials.get(self.endpoint(registry)))
            .await
            .cloned()
    }

    /// The `Authorization` value for a request, if the registry wants one.
    async fn authorization(
        &self,
        registry: &str,
        repository: &str,
        state: &RegistryState,
        challenge: &Challenge,
    ) -> Result<Option<Secret>, Error> {
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self
                .credential(registry, state)
                .await?
                .and_then(|c| c.basic_header())),
            Challenge::Bearer { realm, service } => {
                let scope = auth::pull_scope(repository);
                let cell = {
                    let mut tokens = state
                        .tokens
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    tokens.entry(scope.clone()).or_default().clone()
                };
                let mut slot = cell.lock().await;
                if let Some(token) = slot.as_ref().filter(|t| t.is_fresh()) {
                    return Ok(Some(Secret::new(format!(
                        "Bearer {}",
                        token.value.expose()
                    ))));
                }
                let token = self
                    .fetch_token(registry, state, realm, service.as_deref(), &scope)
                    .await?;
                let header = Secret::new(format!("Bearer {}", token.value.expose()));
                *slot = Some(token);
                Ok(Some(header))
            }
        }
    }

    fn forget_token(&self, state: &RegistryState, repository: &str) {
        let scope = auth::pull_scope(repository);
        let cell = state
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&scope)
            .cloned();
        if let Some(cell) = cell
            && let Ok(mut slot) = cell.try_lock()
        {
            *slot = None;
        }
    }

    async fn fetch_token(
        &self,
        registry: &str,
        state: &RegistryState,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Token, Error> {
        let bad = |why: String| Error::Invalid {
            registry: registry.to_owned(),
            what: "token response",
            why,
        };
        let base = reqwest::Url::parse(&self.base_url(registry)).map_err(|_| Error::Invalid {
            registry: registry.to_owned(),
            what: "registry URL",
            why: crate::imageref::shorten(registry),
        })?;
        let realm =
            realm_allowed(&base, realm, &self.options.insecure).map_err(|why| Error::Insecure {
                registry: registry.to_owned(),
                why,
            })?;
        let realm = realm.as_str();
        let credential = self.credential(registry, state).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = match &credential {
                Some(Credential::IdentityToken(refresh)) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.expose()),
                        ("scope", scope),
                        ("client_id", "repin"),
                    ];
                    if let Some(service) = service {
                        form.push(("service", service));
                    }
                    self.http
                        .post(realm)
                        .body(form_body(&form))
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                }
                other => {
                    let mut query = vec![("scope", scope)];
                    if let Some(service) = service {
                        query.push(("service", service));
                    }
                    let url = format!(
                        "{realm}{}{}",
                        if realm.contains('?') { '&' } else { '?' },
                        form_body(&query)
                    );
                    let mut request = self.http.get(url);
                    if let Some(header) = other.as_ref().and_then(Credential::basic_header) {
                        request = request.header(AUTHORIZATION, header.expose());
                    }
                    request
                }
            };
            let timeout = self.gate(registry, state).await?;
            let wait = match request.timeout(timeout).send().await {
                Ok(r) if r.status().is_success() => {
                    let body =
                        read_capped(registry, r, "token response", self.options.timeout).await?;
                    return auth::parse_token(&body, Instant::now()).map_err(bad);
                }
                Ok(r) if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    return Err(Error::Unauthorized {
                        registry: registry.to_owned(),
                        status: r.status().as_u16(),
                    });
                }
                Ok(r) => match self.transient_status(registry, state, attempt, &r) {
                    Some(wait) => wait?,
                    None => {
                        return Err(bad(format!(
                            "token endpoint answered HTTP {}",
                            r.status().as_u16()
                        )));
                    }
                },
                Err(e) => self.transient_error(registry, state, attempt, timeout, e)?,
            };
            self.wait(registry, wait).await?;
        }
    }
}

/// The TLS error somewhere in a request error's chain, if the request failed in TLS.
/// (`std::io::Error` wraps its payload without exposing it as a `source`, so wrapped
/// I/O errors are unwrapped by hand.)
fn tls_failure(e: &reqwest::Error) -> Option<rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// `a=b&c=d`, percent-encoded.
fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header_str(
    response: &reqwest::Response,
    name: impl reqwest::header::AsHeaderName,
) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `Retry-After` in seconds (the HTTP-date form is rare on registries and ignored).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    header_str(response, RETRY_AFTER)?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Reads a body, refusing more than [`MAX_MANIFEST_BYTES`].
async fn read_capped(
    registry: &str,
    mut response: reqwest::Response,
    what: &'static str,
    timeout: Duration,
) -> Result<Vec<u8>, Error> {
    let too_large = || Error::TooLarge {
        registry: registry.to_owned(),
        what,
        limit: MAX_MANIFEST_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_MANIFEST_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) if e.is_timeout() => {
                return Err(Error::Timeout {
                    registry: registry.to_owned(),
                    timeout,
                    attempts: 1,
                });
            }
            Err(e) => {
                return Err(Error::Transport {
                    registry: registry.to_owned(),
                    attempts: 1,
                    source: e.without_url(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[fe80::1]",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn base_urls() {
        let options = Options {
            insecure: vec!["registry.lan:5000".into()],
            ..Options::default()
        };
        let c = Client::new(options, Credentials::Anonymous).unwrap();
        assert_eq!(c.base_url("docker.io"), "https://registry-1.docker.io");
        assert_eq!(c.base_url("ghcr.io"), "https://ghcr.io");
        assert_eq!(c.base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(c.base_url("registry.lan:5000"), "http://registry.lan:5000");
    }

    #[test]
    fn mirrors_take_the_lookups() {
        let options = Options {
            mirrors: HashMap::from([("docker.io".to_owned(), "127.0.0.1:5000".to_owned())]),
            ..Options::default()
        };
        let c = Client::new(options, Credentials::Anonymous).unwrap();
        assert_eq!(c.base_url("docker.io"), "http://127.0.0.1:5000");
        assert_eq!(c.base_url("ghcr.io"), "https://ghcr.io");
    }

    /// Credentials go only where they belong: no redirect and no token realm may take a
    /// request from HTTPS to plain HTTP, and plain HTTP is used only where allowed.
    #[test]
    fn credentials_only_where_they_belong_no_downgrade() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let insecure = vec!["registry.lan:5000".to_owned()];
        for (from, to, ok) in [
            ("https://r.io/v2/", "https://cdn.example/blob", true),
            ("https://r.io/v2/", "http://r.io/v2/x", false),
            ("https://r.io/v2/", "http://127.0.0.1:5000/x", false),
            ("http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000/x", true),
            ("http://127.0.0.1:5000/v2/", "http://10.0.0.1/x", false),
            ("http://127.0.0.1:5000/v2/", "https://10.0.0.1/x", true),
            (
                "http://registry.lan:5000/v2/",
                "http://registry.lan:5000/y",
                true,
            ),
            ("http://registry.lan:5000/v2/", "file:///etc/passwd", false),
            ("http://[::1]:5000/v2/", "http://[::1]:5001/x", true),
        ] {
            assert_eq!(
                redirect_allowed(&url(from), &url(to), &insecure).is_ok(),
                ok,
                "{from} -> {to}"
            );
        }
        for (base, realm, ok) in [
            ("https://r.io", "https://auth.r.io/token", true),
            ("https://r.io", "http://other-host/token", false),
            ("https://r.io", "http://r.io/token", false),
            ("https://r.io", "http://127.0.0.1:5001/token", false),
            ("https://r.io", "ftp://r.io/token", false),
            ("https://r.io", "not a url", false),
            ("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", true),
            ("http://127.0.0.1:5000", "http://auth.example/token", false),
            (
                "http://registry.lan:5000",
                "http://registry.lan:5001/token",
                true,
            ),
            ("http://registry.lan:5000", "http://evil.lan/token", false),
        ] {
            assert_eq!(
                realm_allowed(&url(base), realm, &insecure).is_ok(),
                ok,
                "{base} realm {realm}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = Client::new(Options::default(), Credentials::Anonymous).unwrap();
        let waits: Vec<u64> = (1..=6).map(|a| c.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000, 8000, 8000]);
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_body(&[("scope", "repository:a/b:pull"), ("x", "1 2")]),
            "scope=repository%3Aa%2Fb%3Apull&x=1%202"
        );
    }
}
