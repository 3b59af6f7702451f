//! Registries: resolve `(registry, repository, tag)` to a digest, and a pin to its new
//! digest, at the request budget (see DESIGN.md's performance model).
//!
//! - [`client`]: manifests and blobs by tag or digest: digest checks, size caps, a
//!   concurrency limit per registry; [`setup`]: its options.
//! - [`transport`]: endpoint and scheme, redirects and realms that never downgrade,
//!   reading answers. `retry`: the one retry policy every request loop uses.
//!   `authorize`: challenge once per registry, credentials, a token per scope.
//! - [`auth`]: challenges, credentials, tokens and their cache. [`credentials`]: where
//!   credentials come from, beside [`dockerconfig`] (Docker's config file and
//!   credential helpers).
//! - [`manifest`]: media types and the few manifest fields repin reads.
//! - [`resolve`]: dedup, immutable-fact caches, and the platform-faithful pin decision.
//! - [`stats`]: process-wide request counts by result, for `/metrics`.
//! - [`Error`]: the failures, each naming the registry.

pub mod auth;
mod authorize;
pub mod client;
pub mod credentials;
pub mod dockerconfig;
mod error;
pub mod manifest;
pub mod resolve;
mod retry;
pub mod setup;
pub mod stats;
pub mod transport;

pub use error::Error;
