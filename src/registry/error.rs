//! What can go wrong talking to a registry. Every variant names the registry; none
//! carries a secret (credentials and tokens are never part of an error).

use std::time::Duration;

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{registry}: {repository}:{reference} not found")]
    NotFound {
        registry: String,
        repository: String,
        reference: String,
    },
    #[error("{registry}: access denied (HTTP {status}); check the credentials for this registry")]
    Unauthorized { registry: String, status: u16 },
    #[error("{registry}: rate limited (HTTP 429{}), gave up after {attempts} attempts", retry_hint(*.retry_after))]
    RateLimited {
        registry: String,
        retry_after: Option<Duration>,
        attempts: u32,
    },
    #[error("{registry}: server error (HTTP {status}) after {attempts} attempts")]
    Server {
        registry: String,
        status: u16,
        attempts: u32,
    },
    #[error("{registry}: unexpected HTTP {status}")]
    Status { registry: String, status: u16 },
    #[error("{registry}: no answer within {timeout:?}, gave up after {attempts} attempts")]
    Timeout {
        registry: String,
        timeout: Duration,
        attempts: u32,
    },
    #[error("{registry}: {source} (after {attempts} attempts)")]
    Transport {
        registry: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{registry}: digest mismatch: the registry says {expected}, the content hashes to {computed}"
    )]
    DigestMismatch {
        registry: String,
        expected: String,
        computed: String,
    },
    #[error("{registry}: {what} is larger than {limit} bytes")]
    TooLarge {
        registry: String,
        what: &'static str,
        limit: usize,
    },
    #[error("{registry}: invalid {what}: {why}")]
    Invalid {
        registry: String,
        what: &'static str,
        why: String,
    },
    #[error("{registry}: {repository}:{tag} does not offer platform {platform}")]
    PlatformNotOffered {
        registry: String,
        repository: String,
        tag: String,
        platform: String,
    },
    #[error("credential helper docker-credential-{helper}: {why}")]
    CredentialHelper { helper: String, why: String },
    #[error("docker config {path}: {why}")]
    DockerConfig { path: String, why: String },
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(", Retry-After {}s", d.as_secs()))
}

impl Error {
    /// Whether the error means "this tag or digest does not exist".
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}
