//! The cron loop: sleeps until the schedule's next tick, starts a full run, and skips a
//! tick (counted) when the previous run is still going, so runs never overlap.
//!
//! Time comes from a [`Clock`] that reads the wall clock once and then advances with
//! tokio's clock, so tests drive a day of ticks with paused time and no sleeping.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::settings::Schedule;

/// The time the schedule runs on: the system's wall clock, or (for tests) a wall time
/// that advances with tokio's clock, so paused time drives the schedule.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    System,
    /// Tokio's clock (paused in tests), from a wall time at an instant.
    Tokio {
        /// The Tokio instant `wall` was read at.
        instant: Instant,
        /// The wall time at `instant`.
        wall: DateTime<Utc>,
    },
}

impl Clock {
    /// A tokio-driven clock reading `wall` now.
    #[must_use]
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self::Tokio {
            instant: Instant::now(),
            wall,
        }
    }

    /// The wall time now.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Tokio { instant, wall } => {
                *wall + chrono::Duration::from_std(instant.elapsed()).unwrap_or_default()
            }
        }
    }

    /// The tokio instant at which the clock will read `at` (now, when `at` is past).
    /// The system clock is read again at every tick, so a wall clock stepped by NTP
    /// moves the schedule with it.
    #[must_use]
    pub fn instant_at(&self, at: DateTime<Utc>) -> Instant {
        let ahead = (at - self.now()).to_std().unwrap_or_default();
        Instant::now() + ahead
    }
}

/// The first tick strictly after `after`.
#[must_use]
pub fn next_tick(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .cron
        .after(&after.with_timezone(&schedule.timezone))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// What the loop did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    /// Ticks that started a run.
    pub started: u64,
    /// Ticks skipped: a run was still going.
    pub skipped: u64,
}

/// Keeps the schedule until `stop` turns true, then waits for a run in progress to
/// finish (bound it with a timeout) and returns. A tick starts a run only when it can
/// take `running` (which other triggers of full runs hold too).
pub async fn keep<F, Fut>(
    schedule: &Schedule,
    clock: Clock,
    running: Arc<tokio::sync::Mutex<()>>,
    mut full_run: F,
    on_skip: impl Fn(),
    mut stop: watch::Receiver<bool>,
) -> Ticks
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticks = Ticks::default();
    let mut after = clock.now();
    while !*stop.borrow() {
        let Some(tick) = next_tick(schedule, after) else {
            tracing::warn!(schedule = %schedule.expression, "the schedule has no more ticks");
            break;
        };
        tokio::select! {
            () = tokio::time::sleep_until(clock.instant_at(tick)) => {}
            _ = stop.changed() => continue,
        }
        // After a suspend or a clock step, go on from now rather than firing every
        // tick missed in between.
        after = tick.max(clock.now());
        while tasks.try_join_next().is_some() {}
        if let Ok(guard) = Arc::clone(&running).try_lock_owned() {
            ticks.started += 1;
            tracing::info!(%tick, "scheduled run");
            let run = full_run();
            tasks.spawn(async move {
                run.await;
                drop(guard);
            });
        } else {
            ticks.skipped += 1;
            on_skip();
            tracing::warn!(%tick, "the previous run is still going; tick skipped");
        }
    }
    while tasks.join_next().await.is_some() {}
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    fn start() -> DateTime<Utc> {
        "2026-03-01T10:00:30Z".parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_fire_on_the_schedule() {
        let schedule = Schedule::parse("*/15 * * * *", chrono_tz::UTC).unwrap();
        let clock = Clock::starting_at(start());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop) = watch::channel(false);
        let record = Arc::clone(&seen);
        let looped = tokio::spawn(async move {
            keep(
                &schedule,
                clock,
                Arc::default(),
                move || {
                    record.lock().unwrap().push(clock.now());
                    async {}
                },
                || {},
                stop,
            )
            .await
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        stop_tx.send(true).unwrap();
        let ticks = looped.await.unwrap();
        let minutes: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.format("%H:%M:%S").to_string())
            .collect();
        assert_eq!(minutes, ["10:15:00", "10:30:00", "10:45:00", "11:00:00"]);
        assert_eq!(
            ticks,
            Ticks {
                started: 4,
                skipped: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn runs_do_not_overlap_and_shutdown_waits_for_the_run_in_progress() {
        // Hourly, and every run takes 90 minutes: every other tick is skipped.
        let schedule = Schedule::parse("0 * * * *", chrono_tz::UTC).unwrap();
        let clock = Clock::starting_at(start());
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let overlapped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let skips = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let (a, f, o, s) = (
            Arc::clone(&active),
            Arc::clone(&finished),
            Arc::clone(&overlapped),
            Arc::clone(&skips),
        );
        let looped = tokio::spawn(async move {
            keep(
                &schedule,
                clock,
                Arc::default(),
                move || {
                    let (a, f, o) = (Arc::clone(&a), Arc::clone(&f), Arc::clone(&o));
                    async move {
                        use std::sync::atomic::Ordering::SeqCst;
                        if a.fetch_add(1, SeqCst) > 0 {
                            o.store(true, SeqCst);
                        }
                        tokio::time::sleep(Duration::from_secs(90 * 60)).await;
                        a.fetch_sub(1, SeqCst);
                        f.fetch_add(1, SeqCst);
                    }
                },
                move || {
                    s.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                },
                stop,
            )
            .await
        });
        // Ticks at 11:00 (starts), 12:00 (skipped), 13:00 (starts), 14:00 (skipped),
        // 15:00 (starts); stop at 15:10, in the middle of the third run.
        tokio::time::sleep(Duration::from_secs(5 * 3600 + 10 * 60 - 30)).await;
        stop_tx.send(true).unwrap();
        let stopped_at = Instant::now();
        let ticks = looped.await.unwrap();
        assert_eq!(
            ticks,
            Ticks {
                started: 3,
                skipped: 2
            }
        );
        assert_eq!(skips.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(!overlapped.load(std::sync::atomic::Ordering::SeqCst));
        // The run in progress finished (at 16:30) before the loop returned.
        assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(
            Instant::now() - stopped_at,
            Duration::from_secs(80 * 60),
            "the loop returned when the third run ended"
        );
    }

    #[test]
    fn next_tick_honours_the_time_zone() {
        let schedule = Schedule::parse("0 9 * * *", "Europe/Berlin".parse().unwrap()).unwrap();
        let tick = next_tick(&schedule, start()).unwrap();
        assert_eq!(tick.to_rfc3339(), "2026-03-02T08:00:00+00:00");
    }
}
