//! The registry HTTP client: manifests and blobs by tag or digest, done right —
//! digests checked against the bytes, bodies capped, a concurrency limit per registry.
//! Around it, one concern per module: [`super::transport`] (endpoint and scheme,
//! redirects, reading answers), `retry` (the one retry policy),
//! `authorize` (challenge, credentials, tokens) with the token cache in
//! [`super::auth`], and [`super::credentials`] (where credentials come from).
//! Deduplication and caching of lookups live in [`super::resolve`].
//!
//! Built on `reqwest` rather than `oci-client`: `oci-client` pings and authenticates per
//! operation and image (a challenge per repository, and no shared token cache across
//! repositories), which breaks the request budget of one challenge per registry; and its
//! single error type cannot tell a missing tag from a rate limit from a bad digest the
//! way [`Error`] does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use tokio::sync::{OnceCell, Semaphore};

use super::auth::{Challenge, Credential, TokenCache};
pub use super::credentials::{Credentials, registry_env_var};
use super::error::Error;
use super::manifest::ACCEPT_ANY;
use super::retry::Attempt;
use super::retry::{Health, Retry};
pub use super::setup::Options;
use super::transport::{self, content_digest, header_str, read_capped};
use crate::imageref::Digest;

/// What a `HEAD` on a manifest told: the manifest's digest (checked against the
/// reference grammar) and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The manifest's digest, checked.
    pub digest: Digest,
    /// Its `Content-Type`, if the registry sent one.
    pub media_type: Option<String>,
    /// The manifest's bytes, when the registry sent no `Docker-Content-Digest` and the
    /// manifest had to be read (and hashed) to learn its digest: kept so that it is not
    /// fetched a second time.
    pub body: Option<std::sync::Arc<[u8]>>,
}

/// A manifest read with `GET`: the exact bytes and their verified digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The manifest, byte for byte.
    pub bytes: Vec<u8>,
    /// The manifest's digest, checked.
    pub digest: Digest,
    /// Its `Content-Type`, if the registry sent one.
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

/// Per-registry state: what it asks for, its tokens, its concurrency limit.
pub(super) struct RegistryState {
    pub(super) challenge: OnceCell<Challenge>,
    pub(super) credential: OnceCell<Option<Credential>>,
    pub(super) tokens: TokenCache,
    permits: Semaphore,
    /// Set once a `HEAD` came back without `Docker-Content-Digest`: this registry's
    /// manifests are then read with one `GET` each, not a useless `HEAD` first.
    pub(super) no_digest_header: std::sync::atomic::AtomicBool,
    /// Given up on, paused, throttled: what the retry policy keeps per registry.
    pub(super) health: Health,
}

/// A registry client shared by every lookup of a run.
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) options: Options,
    pub(super) credentials: Credentials,
    registries: Mutex<HashMap<String, Arc<RegistryState>>>,
}

impl Client {
    /// # Errors
    /// [`Error::Invalid`] when the TLS stack cannot be set up.
    pub fn new(options: Options, credentials: Credentials) -> Result<Self, Error> {
        let http = transport::http_client(&options)?;
        Ok(Self {
            http,
            options,
            credentials,
            registries: Mutex::new(HashMap::new()),
        })
    }

    /// The host a registry's lookups go to: its mirror, or itself.
    pub(super) fn endpoint<'a>(&'a self, registry: &'a str) -> &'a str {
        self.options
            .mirrors
            .get(registry)
            .map_or(registry, String::as_str)
    }

    /// The base URL of a registry's API (`https://registry-1.docker.io` for Docker Hub),
    /// through its mirror when it has one.
    #[must_use]
    pub fn base_url(&self, registry: &str) -> String {
        transport::base_url(self.endpoint(registry), &self.options.insecure)
    }

    /// The retry policy for a request to `registry`.
    pub(super) fn retry<'a>(&'a self, registry: &'a str, state: &'a RegistryState) -> Retry<'a> {
        Retry {
            options: &self.options,
            registry,
            health: &state.health,
        }
    }

    pub(super) fn state(&self, registry: &str) -> Arc<RegistryState> {
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
                    tokens: TokenCache::default(),
                    permits: Semaphore::new(self.options.per_registry.max(1)),
                    no_digest_header: std::sync::atomic::AtomicBool::new(false),
                    health: Health::default(),
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
        if let Some(digest) = content_digest(registry, &response)? {
            Ok(Head {
                digest,
                media_type,
                body: None,
            })
        } else {
            state.no_digest_header.store(true, Ordering::Relaxed);
            Ok(self
                .get_manifest(registry, repository, reference)
                .await?
                .into())
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
    #[tracing::instrument(level = "debug", skip(self, method, path, accept), fields(%method))]
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
        let challenge = self.challenge(registry, &state).await?;
        let url = &format!("{}{path}", self.base_url(registry));
        let refreshed_token = &std::sync::atomic::AtomicBool::new(false);
        let unexpected = |response: &reqwest::Response| Error::Status {
            registry: registry.to_owned(),
            status: response.status().as_u16(),
        };
        let (state, challenge, method) = (&*state, &challenge, &method);
        self.retry(registry, state)
            .run(unexpected, |timeout| async move {
                let authorization = self
                    .authorization(registry, repository, state, challenge)
                    .await?;
                let mut request = self
                    .http
                    .request(method.clone(), url)
                    .timeout(timeout)
                    .header(ACCEPT, accept);
                if let Some(value) = &authorization {
                    request = request.header(AUTHORIZATION, value.expose());
                }
                tracing::debug!(registry, %method, path, "request");
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(e) => {
                        super::stats::record(None);
                        return Ok(Attempt::Failed(e));
                    }
                };
                let status = response.status();
                super::stats::record(Some(status));
                if status != StatusCode::TOO_MANY_REQUESTS {
                    state
                        .health
                        .throttled
                        .store(0, std::sync::atomic::Ordering::Relaxed);
                }
                if status.is_success() {
                    return Ok(Attempt::Done(response));
                }
                let scope = &super::auth::pull_scope(repository);
                let bearer = matches!(challenge, Challenge::Bearer { .. });
                match status {
                    StatusCode::NOT_FOUND => Err(Error::NotFound {
                        registry: registry.to_owned(),
                        repository: repository.to_owned(),
                        reference: reference.to_owned(),
                    }),
                    StatusCode::UNAUTHORIZED
                        if bearer
                            && !refreshed_token
                                .swap(true, std::sync::atomic::Ordering::Relaxed) =>
                    {
                        // The token may have expired early, or (asked for several
                        // repositories) not cover this one: a fresh one, once.
                        if let Some(used) = &authorization {
                            state.tokens.refused(scope, used).await;
                        }
                        Ok(Attempt::Again)
                    }
                    // A token asked for several repositories that a registry refuses
                    // with 403 (`insufficient_scope`, as RFC 6750 has it) did not
                    // cover this one: a token of its own, once.
                    StatusCode::FORBIDDEN
                        if bearer
                            && !refreshed_token.load(std::sync::atomic::Ordering::Relaxed)
                            && match &authorization {
                                Some(used) => state.tokens.refused(scope, used).await,
                                None => false,
                            } =>
                    {
                        refreshed_token.store(true, std::sync::atomic::Ordering::Relaxed);
                        Ok(Attempt::Again)
                    }
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::Unauthorized {
                        registry: registry.to_owned(),
                        status: status.as_u16(),
                    }),
                    _ => Ok(Attempt::Status(response)),
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
