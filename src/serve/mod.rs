//! `repin serve`: the long-running daemon. Full runs over the fleet on a cron schedule
//! (and at start, when asked), GitHub webhooks that run single repositories, and the
//! operations endpoints.
//!
//! - [`schedule`]: the cron loop (no overlapping runs), on a [`schedule::Clock`] that
//!   tests drive with paused tokio time.
//! - [`crate::forge::queue`] (shared with `repin run`): repositories run concurrently
//!   up to a limit, one run per repository at a time.
//! - [`debounce`]: a burst of pushes to one repository makes one run.
//! - [`webhook`]: the signature check (before parsing) and the events repin acts on.
//! - [`http`]: the axum routes: `POST /webhook`, `/healthz`, `/readyz`, `/metrics`.
//! - [`conn`]: the connections they are served on, bounded (count, header time).
//! - [`metrics`]: the Prometheus text exposition.
//!
//! Shutdown (SIGTERM/SIGINT): readiness turns 503, the schedule and the HTTP server
//! stop taking work, waiting repositories are dropped, and running ones get
//! `shutdown_timeout` to finish; what still runs then is abandoned (a later run picks up
//! where it stopped: every step of a repository's run is safe to repeat).

pub mod conn;
pub mod debounce;
pub mod http;
pub mod metrics;
pub mod schedule;
pub mod webhook;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::watch;

use crate::config::ServeConfig;
use crate::forge::fleet::{Fleet, Target};
use crate::forge::queue::{Queue, Ran};
use crate::forge::run::{RepoSummary, RunOptions, run_repo_apart};
use crate::options::Lookups;
use crate::registry::resolve::Resolver;
use crate::secret::Secret;
use crate::state::Store;
use metrics::Metrics;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listening or serving failed.
    #[error("listening: {0}")]
    Io(#[from] std::io::Error),
}

/// Everything `serve` needs, built by the command line.
pub struct ServeOptions {
    /// `[serve]`.
    pub config: ServeConfig,
    /// Which repositories, as whom.
    pub fleet: Fleet,
    /// The settings of each repository's run (its resolver is set per run here).
    pub run: RunOptions,
    /// How to make a fresh set of lookups (registry settings); one per full run, one
    /// per webhook-triggered repository, so a tag is asked about again each time.
    pub lookups: Lookups,
    /// The state store kept open across runs.
    pub store: Option<Arc<Store>>,
    /// `None` turns webhooks away (404).
    pub webhook_secret: Option<Secret>,
    /// Where clones go (each run in its own folder, removed after).
    pub work_dir: PathBuf,
}

/// The daemon's shared state.
pub struct Service {
    opts: ServeOptions,
    queue: Queue,
    debouncer: Arc<debounce::Debouncer>,
    /// `/metrics`.
    pub metrics: Metrics,
    deliveries: http::Deliveries,
    running: Arc<tokio::sync::Mutex<()>>,
    ready: AtomicBool,
}

impl Service {
    /// The daemon's state for `opts`: a queue of `[serve] concurrency`, metrics at zero.
    #[must_use]
    pub fn new(opts: ServeOptions) -> Arc<Self> {
        Arc::new(Self {
            queue: Queue::new(opts.config.concurrency),
            debouncer: Arc::new(debounce::Debouncer::new(opts.config.debounce)),
            metrics: Metrics::new(),
            deliveries: http::Deliveries::default(),
            running: Arc::default(),
            ready: AtomicBool::new(false),
            opts,
        })
    }

    fn resolver(&self) -> Option<Arc<Resolver>> {
        match self.opts.lookups.resolver() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "registry setup");
                None
            }
        }
    }

    /// Runs one repository through the queue, and counts what happened.
    pub async fn process(self: &Arc<Self>, target: Target, resolver: Option<Arc<Resolver>>) {
        let key = target.full_name.clone();
        let this = Arc::clone(self);
        let ran = self
            .queue
            .admit(&key, || async move {
                let started = Instant::now();
                let result = this.run_blocking(target, resolver).await;
                this.metrics
                    .repository_seconds
                    .observe(started.elapsed().as_secs_f64());
                result
            })
            .await;
        let m = &self.metrics;
        match ran {
            Ran::Done(Ok(summary)) => {
                let result = if summary.errors.is_empty() {
                    "ok"
                } else {
                    "error"
                };
                Metrics::count(&m.repositories, &[("result", result)], 1);
                for error in &summary.errors {
                    tracing::error!(repository = key, error, "change set failed");
                }
                for (action, list) in [
                    ("opened", &summary.opened),
                    ("updated", &summary.updated),
                    ("closed", &summary.closed),
                ] {
                    Metrics::count(&m.pull_requests, &[("action", action)], list.len() as u64);
                }
                tracing::info!(
                    repository = key,
                    opened = ?summary.opened,
                    updated = ?summary.updated,
                    closed = ?summary.closed,
                    notes = ?summary.notes,
                    "repository done"
                );
            }
            Ran::Done(Err(error)) => {
                Metrics::count(&m.repositories, &[("result", "error")], 1);
                tracing::error!(repository = key, error, "repository failed");
            }
            Ran::Folded => tracing::debug!(repository = key, "folded into a queued run"),
            Ran::Abandoned => tracing::info!(repository = key, "shutting down; not started"),
        }
    }

    /// One repository on a blocking thread of its own ([`run_repo_apart`]), so the HTTP
    /// server and the schedule never wait behind a clone.
    async fn run_blocking(
        &self,
        target: Target,
        resolver: Option<Arc<Resolver>>,
    ) -> Result<RepoSummary, String> {
        let resolver = resolver
            .or_else(|| self.resolver())
            .ok_or_else(|| "the registry lookups could not be set up".to_owned())?;
        let opts = RunOptions {
            resolver,
            store: self.opts.store.clone(),
            ..self.opts.run.clone()
        };
        run_repo_apart(target, opts, &self.opts.work_dir).await.0
    }

    /// Queues repositories; each runs as soon as the queue lets it.
    pub fn enqueue(self: &Arc<Self>, targets: Vec<Target>) {
        for target in targets {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.process(target, None).await });
        }
    }

    /// One run over the whole fleet, sharing its lookups. The caller holds `running`.
    pub async fn full_run(self: &Arc<Self>, trigger: &'static str) {
        let started = Instant::now();
        Metrics::count(&self.metrics.runs, &[("trigger", trigger)], 1);
        let targets = match self.opts.fleet.targets().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "listing repositories");
                return;
            }
        };
        tracing::info!(trigger, repositories = targets.len(), "full run");
        let resolver = self.resolver();
        let mut tasks = tokio::task::JoinSet::new();
        for target in targets {
            let (this, resolver) = (Arc::clone(self), resolver.clone());
            tasks.spawn(async move { this.process(target, resolver).await });
        }
        while tasks.join_next().await.is_some() {}
        self.metrics
            .run_seconds
            .observe(started.elapsed().as_secs_f64());
        tracing::info!(
            trigger,
            seconds = started.elapsed().as_secs_f64(),
            "full run done"
        );
    }

    /// Ready to take work: started, and not shutting down.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Resolves on SIGTERM or SIGINT (the `shutdown` the command line passes to [`serve`]).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    if let (Ok(mut term), Ok(mut interrupt)) = (term, interrupt) {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    } else {
        tracing::error!("cannot listen for signals; stop with SIGKILL");
        std::future::pending::<()>().await;
    }
}

/// Runs the daemon on `listener` until `shutdown` resolves, then shuts down as the
/// module docs say.
///
/// # Errors
/// [`Error`] when the HTTP server fails.
pub async fn serve(
    opts: ServeOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let deadline = opts.config.shutdown_timeout;
    let service = Service::new(opts);
    let (stop_tx, stop) = watch::channel(false);
    let router = http::router(Arc::clone(&service));
    let server = tokio::spawn(conn::serve(listener, router, stop.clone()));
    let mut background = tokio::task::JoinSet::new();
    if service.opts.config.run_at_start {
        let this = Arc::clone(&service);
        let guard = Arc::clone(&service.running).lock_owned().await;
        background.spawn(async move {
            this.full_run("startup").await;
            drop(guard);
        });
    }
    if let Some(cron) = service.opts.config.schedule.clone() {
        let this = Arc::clone(&service);
        let stop = stop.clone();
        background.spawn(async move {
            let clock = schedule::Clock::System;
            let run = Arc::clone(&this);
            schedule::keep(
                &cron,
                clock,
                Arc::clone(&this.running),
                move || {
                    let run = Arc::clone(&run);
                    async move { run.full_run("schedule").await }
                },
                || {
                    this.metrics.runs_skipped.inc();
                },
                stop,
            )
            .await;
        });
    }
    service.ready.store(true, Ordering::SeqCst);
    shutdown.await;
    tracing::info!(
        deadline_secs = deadline.as_secs(),
        "shutting down: no new work; waiting for running repositories"
    );
    service.ready.store(false, Ordering::SeqCst);
    service.queue.close();
    let _ = stop_tx.send(true);
    let finished = tokio::time::timeout(deadline, async {
        while background.join_next().await.is_some() {}
        service.queue.idle().await;
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            repositories = service.queue.busy(),
            "shutdown deadline passed; abandoning the repositories still running"
        );
    }
    match tokio::time::timeout(std::time::Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => Err(Error::Io(e)),
        _ => Ok(()),
    }
}
