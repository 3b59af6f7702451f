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
    #[error("{registry}: {} (after {attempts} attempts)", root_cause(source))]
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
    /// A manifest asked for by digest came back named by another.
    #[error("{registry}: asked for manifest {asked}, the registry answered with {answered}")]
    OtherManifest {
        registry: String,
        asked: String,
        answered: String,
    },
    /// An earlier request gave up on this registry (it did not answer, or its rate
    /// limit did not lift); the rest of the run does not ask it again.
    #[error("{registry}: not asked again in this run: {why}")]
    GaveUp { registry: String, why: String },
    /// The run's `--deadline` passed before this lookup was done.
    #[error("{registry}: the run's deadline (--deadline) passed before this lookup was done")]
    Deadline { registry: String },
    /// The TLS handshake failed; `plain_http` when the registry answered plain HTTP.
    #[error("{registry}: {}", tls_hint(registry, *.plain_http, why))]
    Tls {
        registry: String,
        plain_http: bool,
        why: String,
    },
    /// A request that would downgrade to plain HTTP (a token realm, a redirect): refused
    /// before anything is sent.
    #[error("{registry}: {why}")]
    Insecure { registry: String, why: String },
    /// A value the registry gave as a digest breaks the digest grammar; `why` names
    /// where it was and holds the value, shortened.
    #[error("{registry}: {why}")]
    NotADigest { registry: String, why: String },
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
    #[error("{registry}: {repository}@{digest}… {why}")]
    PinUnknown {
        registry: String,
        repository: String,
        /// The pin's algorithm and first hex characters.
        digest: String,
        why: String,
    },
    #[error("credential helper docker-credential-{helper}: {why}")]
    CredentialHelper { helper: String, why: String },
    #[error("docker config {path}: {why}")]
    DockerConfig { path: String, why: String },
}

fn tls_hint(registry: &str, plain_http: bool, why: &str) -> String {
    if plain_http {
        format!(
            "answered plain HTTP where HTTPS was expected; if this registry serves plain HTTP, allow it with --insecure-registry {registry} (or insecure = true in the service config)"
        )
    } else {
        format!("TLS failed ({why})")
    }
}

/// The innermost message of an error chain (`reqwest` says "error sending request";
/// the reason — a refused connection, a failed name lookup — is at the bottom).
pub(super) fn root_cause(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        message = inner.to_string();
        source = inner.source();
    }
    message
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
