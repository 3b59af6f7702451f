//! Debouncing: act once, a delay after the last of a burst of pokes for the same key
//! (a push to a repository, then another a few seconds later, makes one run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// See the module docs.
pub struct Debouncer {
    delay: Duration,
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl Debouncer {
    /// A debouncer that waits `delay` after the last event.
    #[must_use]
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            deadlines: Mutex::new(HashMap::new()),
        }
    }

    fn deadlines(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.deadlines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves `key`'s deadline to now + delay; the first poke of a burst spawns the task
    /// that calls `fire` at the deadline. Returns whether this poke started a burst.
    pub fn poke(self: &Arc<Self>, key: &str, fire: impl FnOnce() + Send + 'static) -> bool {
        let key = key.to_ascii_lowercase();
        let deadline = Instant::now() + self.delay;
        if self.deadlines().insert(key.clone(), deadline).is_some() {
            return false;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut deadline = deadline;
            loop {
                tokio::time::sleep_until(deadline).await;
                let mut deadlines = this.deadlines();
                match deadlines.get(&key) {
                    Some(&later) if later > deadline => deadline = later,
                    _ => {
                        deadlines.remove(&key);
                        break;
                    }
                }
            }
            fire();
        });
        true
    }

    /// Keys waiting to fire.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.deadlines().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_burst_fires_once_after_the_last_poke() {
        let debouncer = Arc::new(Debouncer::new(Duration::from_secs(30)));
        let fired = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let poke = |key: &str| {
            let fired = Arc::clone(&fired);
            debouncer.poke(key, move || fired.lock().unwrap().push(start.elapsed()))
        };
        assert!(poke("acme/app"));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!poke("Acme/App"));
        assert!(poke("acme/other"));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!poke("acme/app"));
        assert_eq!(debouncer.pending(), 2);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let mut fired = fired.lock().unwrap().clone();
        fired.sort();
        // acme/other 30 s after its poke at 10 s; acme/app 30 s after its last, at 20 s.
        assert_eq!(fired, [Duration::from_secs(40), Duration::from_secs(50)]);
        assert_eq!(debouncer.pending(), 0);
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        assert!(debouncer.poke("acme/app", move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
        tokio::time::sleep(Duration::from_secs(31)).await;
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
