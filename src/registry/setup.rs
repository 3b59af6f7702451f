//! How the registry client behaves ([`Options`]): timeouts, attempts and backoff,
//! concurrency per registry, plain-HTTP hosts, mirrors, the deadline. Resolved from
//! flags and the service config by [`crate::options::Lookups`].

use std::collections::HashMap;
use std::time::Duration;

/// How the client behaves; the defaults suit real registries, tests shorten the times.
#[derive(Debug, Clone)]
pub struct Options {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Timeout for a connection.
    pub connect_timeout: Duration,
    /// Attempts per request, first included, for 429, 5xx, timeouts and connection errors.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt up to `backoff_cap`.
    pub backoff: Duration,
    /// The longest backoff.
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
