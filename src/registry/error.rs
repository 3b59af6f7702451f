//! What can go wrong talking to a registry. Every variant names the registry; none
//! carries a secret (credentials and tokens are never part of an error).

use std::time::Duration;

/// A registry failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository or the tag (or digest) does not exist.
    #[error(
        "{registry}: {repository}{}{reference} not found",
        if reference.contains(':') { "@" } else { ":" }
    )]
    NotFound {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The repository path in the registry.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
    },
    #[error("{registry}: access denied (HTTP {status}); check the credentials for this registry")]
    /// The registry refused the credentials (401, 403).
    Unauthorized {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The HTTP status.
        status: u16,
    },
    /// 429s past the attempts or a `Retry-After` longer than allowed.
    #[error("{registry}: rate limited (HTTP 429{}), gave up after {attempts} attempts", retry_hint(*.retry_after))]
    RateLimited {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The `Retry-After` the registry asked for, if any.
        retry_after: Option<Duration>,
        /// Attempts made, the first included.
        attempts: u32,
    },
    /// 5xx past the attempts.
    #[error("{registry}: server error (HTTP {status}) after {attempts} attempts")]
    Server {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The HTTP status.
        status: u16,
        /// Attempts made, the first included.
        attempts: u32,
    },
    #[error("{registry}: unexpected HTTP {status}")]
    /// Another status that is not worth retrying.
    Status {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The HTTP status.
        status: u16,
    },
    /// No answer in time, past the attempts.
    #[error("{registry}: no answer within {timeout:?}, gave up after {attempts} attempts")]
    Timeout {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The timeout per attempt.
        timeout: Duration,
        /// Attempts made, the first included.
        attempts: u32,
    },
    /// No answer: connection or protocol failure, past the attempts.
    #[error("{registry}: {} (after {attempts} attempts)", root_cause(source))]
    Transport {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{registry}: digest mismatch: the registry says {expected}, the content hashes to {computed}"
    )]
    /// Content that does not hash to the digest it is named by.
    DigestMismatch {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The digest it is named by.
        expected: String,
        /// What the content hashes to.
        computed: String,
    },
    /// A manifest asked for by digest came back named by another.
    #[error("{registry}: asked for manifest {asked}, the registry answered with {answered}")]
    OtherManifest {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The digest asked for.
        asked: String,
        /// The digest the registry answered with.
        answered: String,
    },
    /// An earlier request gave up on this registry (it did not answer, or its rate
    /// limit did not lift); the rest of the run does not ask it again.
    #[error("{registry}: not asked again in this run: {why}")]
    GaveUp {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// Why, in words.
        why: String,
    },
    /// The run's `--deadline` passed before this lookup was done.
    #[error("{registry}: the run's deadline (--deadline) passed before this lookup was done")]
    Deadline {
        /// The registry host (`ghcr.io`).
        registry: String,
    },
    /// The TLS handshake failed; `plain_http` when the registry answered plain HTTP.
    #[error("{registry}: {}", tls_hint(registry, *.plain_http, why))]
    Tls {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The answer was plain HTTP (the registry is not on HTTPS).
        plain_http: bool,
        /// Why, in words.
        why: String,
    },
    /// A request that would downgrade to plain HTTP (a token realm, a redirect): refused
    /// before anything is sent.
    #[error("{registry}: {why}")]
    Insecure {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// Why, in words.
        why: String,
    },
    /// A value the registry gave as a digest breaks the digest grammar; `why` names
    /// where it was and holds the value, shortened.
    #[error("{registry}: {why}")]
    NotADigest {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// Why, in words.
        why: String,
    },
    /// An answer larger than the cap.
    #[error("{registry}: {what} is larger than {limit} bytes")]
    TooLarge {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// What was read (`manifest`, `token response`).
        what: &'static str,
        /// The cap, in bytes.
        limit: usize,
    },
    /// An answer repin cannot use (a bad challenge, token, manifest).
    #[error("{registry}: invalid {what}: {why}")]
    Invalid {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// What was read (`manifest`, `token response`).
        what: &'static str,
        /// Why, in words.
        why: String,
    },
    /// The tag's index offers no manifest for the platform.
    #[error("{registry}: {repository}:{tag} does not offer platform {platform}")]
    PlatformNotOffered {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The repository path in the registry.
        repository: String,
        /// The tag.
        tag: String,
        /// The platform (`os/arch[/variant]`).
        platform: String,
    },
    /// Whether an old pin is an index or a platform manifest cannot be learned.
    #[error("{registry}: {repository}@{digest}… {why}")]
    PinUnknown {
        /// The registry host (`ghcr.io`).
        registry: String,
        /// The repository path in the registry.
        repository: String,
        /// The pin's algorithm and first hex characters.
        digest: String,
        /// Why, in words.
        why: String,
    },
    #[error("credential helper docker-credential-{helper}: {why}")]
    /// A Docker credential helper failed.
    CredentialHelper {
        /// The helper (`docker-credential-<name>`).
        helper: String,
        /// Why, in words.
        why: String,
    },
    #[error("docker config {path}: {why}")]
    /// Docker's config file cannot be used.
    DockerConfig {
        /// The file.
        path: String,
        /// Why, in words.
        why: String,
    },
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing manifest is named as the reference was written: `repo:tag`, or
    /// `repo@sha256:…` for a digest.
    #[test]
    fn not_found_names_tag_or_digest_as_written() {
        let missing = |reference: &str| {
            Error::NotFound {
                registry: "ghcr.io".into(),
                repository: "acme/app".into(),
                reference: reference.into(),
            }
            .to_string()
        };
        assert_eq!(missing("1.2"), "ghcr.io: acme/app:1.2 not found");
        assert_eq!(
            missing("sha256:abc"),
            "ghcr.io: acme/app@sha256:abc not found"
        );
    }
}
