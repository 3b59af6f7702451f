//! Registries: resolve `(registry, repository, tag)` to a digest, and a pin to its new
//! digest, at the request budget (see DESIGN.md's performance model).
//!
//! - [`client`]: HTTP, auth, retries, size caps, digest checks.
//! - [`auth`]: challenges, credentials, tokens. [`dockerconfig`]: Docker's config file
//!   and credential helpers.
//! - [`manifest`]: media types and the few manifest fields repin reads.
//! - [`resolve`]: dedup, immutable-fact caches, and the platform-faithful pin decision.
//! - [`stats`]: process-wide request counts by result, for `/metrics`.
//! - [`Error`]: the failures, each naming the registry.

pub mod auth;
pub mod client;
pub mod dockerconfig;
mod error;
pub mod manifest;
pub mod resolve;
pub mod stats;

pub use error::Error;
