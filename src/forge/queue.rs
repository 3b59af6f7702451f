//! The work queue of `run` and `serve`: repositories run concurrently up to a limit,
//! each repository at most once at a time. A request for a repository that is already running queues one more
//! run after it (the running one may have read the tree before the change that caused
//! the request); further requests while that one waits are folded into it.
//!
//! Closing the queue ([`Queue::close`]) lets running work finish and turns waiting work
//! away; [`Queue::idle`] resolves when nothing runs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, watch};

/// What became of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran<T> {
    /// The work ran; its result.
    Done(T),
    /// Folded into a run already waiting for the same repository.
    Folded,
    /// The queue closed before the work started.
    Abandoned,
}

#[derive(Default)]
struct Slot {
    running: tokio::sync::Mutex<()>,
    waiting: AtomicBool,
}

/// See the module docs.
pub struct Queue {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    permits: Semaphore,
    busy: watch::Sender<usize>,
    closed: AtomicBool,
}

/// Counts a request as busy until dropped.
struct Busy<'a>(&'a watch::Sender<usize>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Queue {
    /// A queue running at most `concurrency` repositories at once.
    #[must_use]
    pub fn new(concurrency: usize) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            permits: Semaphore::new(concurrency.max(1)),
            busy: watch::Sender::new(0),
            closed: AtomicBool::new(false),
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(slots.entry(key.to_ascii_lowercase()).or_default())
    }

    /// Runs `work` for `key` when the key is free and a permit is available.
    pub async fn admit<T, Fut: Future<Output = T>>(
        &self,
        key: &str,
        work: impl FnOnce() -> Fut,
    ) -> Ran<T> {
        if self.is_closed() {
            return Ran::Abandoned;
        }
        let slot = self.slot(key);
        if slot.waiting.swap(true, Ordering::SeqCst) {
            return Ran::Folded;
        }
        self.busy.send_modify(|n| *n += 1);
        let _busy = Busy(&self.busy);
        let _running = slot.running.lock().await;
        // From here on a new request queues another run after this one.
        slot.waiting.store(false, Ordering::SeqCst);
        let Ok(_permit) = self.permits.acquire().await else {
            return Ran::Abandoned;
        };
        if self.is_closed() {
            return Ran::Abandoned;
        }
        Ran::Done(work().await)
    }

    /// Stops new work from starting; what runs goes on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Whether the queue was closed (shutdown): nothing new starts.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Requests running or waiting.
    #[must_use]
    pub fn busy(&self) -> usize {
        *self.busy.borrow()
    }

    /// Resolves when no request is running or waiting.
    pub async fn idle(&self) {
        let mut rx = self.busy.subscribe();
        // The sender lives in `self`, so this cannot fail while `self` is borrowed.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn runs_concurrently_up_to_the_limit_and_once_per_repository() {
        let queue = Arc::new(Queue::new(2));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for key in ["a/1", "a/2", "a/3", "a/4"] {
            let (queue, now, peak) = (Arc::clone(&queue), Arc::clone(&now), Arc::clone(&peak));
            tasks.spawn(async move {
                queue
                    .admit(key, || async {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        key
                    })
                    .await
            });
        }
        let mut done = 0;
        while let Some(r) = tasks.join_next().await {
            assert!(matches!(r.unwrap(), Ran::Done(_)));
            done += 1;
        }
        assert_eq!(done, 4);
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(queue.busy(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_during_a_run_queues_one_more_and_later_ones_fold_in() {
        let queue = Arc::new(Queue::new(4));
        let runs = Arc::new(AtomicUsize::new(0));
        let request = |queue: &Arc<Queue>, runs: &Arc<AtomicUsize>| {
            let (queue, runs) = (Arc::clone(queue), Arc::clone(runs));
            tokio::spawn(async move {
                queue
                    .admit("Acme/App", || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    })
                    .await
            })
        };
        let first = request(&queue, &runs);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let second = request(&queue, &runs);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let third = request(&queue, &runs);
        assert_eq!(third.await.unwrap(), Ran::Folded);
        assert_eq!(first.await.unwrap(), Ran::Done(()));
        assert_eq!(second.await.unwrap(), Ran::Done(()));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_lets_running_work_finish_and_turns_waiting_work_away() {
        let queue = Arc::new(Queue::new(1));
        let spawn = |key: &'static str| {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                queue
                    .admit(key, || tokio::time::sleep(Duration::from_secs(30)))
                    .await
            })
        };
        let running = spawn("a/1");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let waiting = spawn("a/2");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(queue.busy(), 2);
        queue.close();
        queue.idle().await;
        assert_eq!(running.await.unwrap(), Ran::Done(()));
        assert_eq!(waiting.await.unwrap(), Ran::Abandoned);
        assert_eq!(queue.admit("a/3", || async {}).await, Ran::Abandoned);
    }
}
