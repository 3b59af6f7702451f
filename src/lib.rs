//! repin keeps digest-pinned container images fresh.
//!
//! # Layout
//!
//! Data flows left to right; each stage is plain data in, plain data out, with I/O kept
//! at the edges (the registry client, the file writer):
//!
//! ```text
//! config ─┐
//! source ─► scan ─► check (resolve) ─► policy (decide) ─► update (edit) | run (git + PR)
//!                                  schedule | webhooks ─► serve (queue) ─► run
//! ```
//!
//! - [`imageref`]: the reference grammar. `ImageRef`, `Digest` and `Platform`: parse,
//!   normalize (`nginx` → `docker.io/library/nginx`), display.
//! - [`scan`]: find every image reference in a tree with exact byte spans. One module
//!   per file format behind one narrow interface (text in, candidate spans out), listed
//!   in the format table [`scan::FORMATS`] ([`mod@scan::format`]: name, path predicate,
//!   content sniff, extractor; "adding a format" in [`scan`]'s docs):
//!   [`scan::dockerfile`], [`scan::compose`], [`scan::github_actions`],
//!   [`scan::gitlab_ci`], [`scan::cloudbuild`], [`scan::kustomize`], [`scan::ko`],
//!   [`scan::helm_chart`], [`scan::helm_values`], [`scan::kubernetes`] (with Argo CD
//!   and Flux objects) and the opt-in [`scan::extra`], sharing a positioned YAML tree
//!   (`scan/yaml.rs`, `libyaml-safer` underneath), a line-by-line reader for Kubernetes
//!   documents that do not parse (`scan/yaml_lines.rs`), `${VAR}` handling
//!   (`scan/vars.rs`), a reference composed from a mapping's fields
//!   (`scan/image_fields.rs`), text embedded in another file's value with its spans
//!   mapped back (`scan/embedded.rs`) and byte → line/column positions
//!   (`scan/source.rs`). [`scan::walk`] chooses files (`.gitignore`-aware, hidden files
//!   included, no symlinks followed), scans them in parallel, then reads the files
//!   others pull in (GitLab CI's local includes). The reference text of every finding
//!   is cut from the file at its span, so `file[start..end] == reference` holds by
//!   construction; a reference written across several fields carries its parts and
//!   its digest's slot ([`scan::Fields`]).
//! - [`registry`]: tag → digest at the request budget. [`registry::client`] (manifests
//!   and blobs, digest checks, caps; its [`registry::setup`] options),
//!   [`registry::transport`] (endpoint, scheme, redirects, reading answers), one retry
//!   policy and the challenge/token flow (private modules: one token for many
//!   repositories), [`registry::auth`] (token cache), [`registry::credentials`] and [`registry::dockerconfig`] (where credentials
//!   come from), [`registry::manifest`] (media types, platform descriptors),
//!   [`registry::resolve`] (one lookup per tag per run, immutable-fact caches kept
//!   across runs through its `Kept` trait, the platform-faithful pin decision).
//! - [`config`]: the repository config (untrusted: rules only) and the service config
//!   (trusted: registries, credentials by variable name, org rules), with spanned
//!   diagnostics; [`config::Rules`] layers them.
//! - [`policy`]: pure: records + rules + time + [`state`] snapshot → why each
//!   reference is held, and the change sets to propose. [`state`]: the `redb` store of
//!   first-seen digests and schedule anchors, and bounded caches that only save
//!   requests (facts about digests, kept scans, pull request lists).
//! - [`options`]: every precedence rule (flag > environment > service config > default)
//!   in one place, applied once at the top (`for_job`, `for_run`, `for_serve`); below it
//!   nothing reads the environment.
//! - [`job`]: one run over a tree: configs → scan → rules → registry → state → policy;
//!   or over a repository's scan kept at its default branch's commit ([`job::kept`]:
//!   what `run` checks an unchanged repository from, without cloning it).
//! - [`model`]: one [`model::Record`] per reference — finding, effective settings,
//!   lookup outcome, hold — read and filled by every stage after the scan.
//! - [`check`]: records + registry → each record's lookup (`current`, `outdated`, …); a
//!   lookup that fails or dies is an error at its own record.
//! - [`update`] plans digest edits per file; [`edit`] splices them, re-scans to verify,
//!   and writes atomically: the one place files change.
//! - [`git`]: git2 — shallow clone, commit on a parent, push and delete with a lease.
//! - [`forge`]: pull requests. [`forge::pr`] renders a change set (branch, commit,
//!   title, body with hidden state); [`forge::github`] is the GitHub client (octocrab,
//!   rate limits, pages, typed errors, Git Data API); [`forge::app`] App auth;
//!   [`forge::fleet`] the repositories a run covers (token list or App installations,
//!   globs, shard); [`forge::plan`] decides, from data alone, what to do with each
//!   change set and open PR; [`forge::queue`] runs repositories concurrently up to a
//!   limit, each at most once at a time (`run` and `serve`); [`forge::run`] gathers
//!   (from a kept scan and a conditional pull request list when the default branch has
//!   not moved, else from a clone), plans and executes.
//! - [`shard`]: the stable split of a fleet across N workers (`--shard`, Indexed Jobs).
//! - [`serve`]: the daemon around [`forge::run`]: [`serve::schedule`] (cron, no overlap),
//!   [`forge::queue`] (shared with `run`), [`serve::debounce`], [`serve::webhook`] (signature check before parsing, events),
//!   [`serve::http`] (axum routes), [`serve::metrics`] (Prometheus text).
//! - [`rooted`]: files under a root, reached without following any link (`cap-std`):
//!   how the repository config is read and every file is written.
//! - [`secret`]: a string that never prints. [`progress`]: the stderr progress line.
//! - [`output`]: the `--format text|json` renderings (stdout is data, stderr is logs).
//! - [`cli`]: the clap definitions; `main.rs` parses, runs one library operation,
//!   prints, and maps the outcome to an exit code.

pub mod check;
pub mod cli;
pub mod config;
pub mod edit;
pub mod forge;
pub mod git;
pub mod imageref;
pub mod job;
pub mod model;
pub mod options;
pub mod output;
pub mod policy;
pub mod progress;
pub mod registry;
pub mod rooted;
pub mod scan;
pub mod secret;
pub mod serve;
pub mod shard;
pub mod state;
pub mod update;
