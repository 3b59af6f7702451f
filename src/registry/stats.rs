//! Process-wide counts of registry requests (manifest and blob requests; the challenge
//! and token requests are not included) by result, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// The results requests are counted under, in [`counts`] order.
pub const RESULTS: [&str; 7] = [
    "ok",
    "not_found",
    "unauthorized",
    "rate_limited",
    "server_error",
    "other_status",
    "transport_error",
];

static COUNTS: [AtomicU64; RESULTS.len()] = [const { AtomicU64::new(0) }; RESULTS.len()];

/// Counts one response status (or `None` for a request that got no response).
pub fn record(status: Option<reqwest::StatusCode>) {
    let index = match status.map(|s| s.as_u16()) {
        None => 6,
        Some(200..=299) => 0,
        Some(404) => 1,
        Some(401 | 403) => 2,
        Some(429) => 3,
        Some(500..=599) => 4,
        Some(_) => 5,
    };
    COUNTS[index].fetch_add(1, Ordering::Relaxed);
}

/// (result, requests so far) for every result.
#[must_use]
pub fn counts() -> Vec<(&'static str, u64)> {
    RESULTS
        .iter()
        .zip(&COUNTS)
        .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
        .collect()
}
