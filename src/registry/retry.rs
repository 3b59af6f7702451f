//! One retry policy for every request the client makes (manifests, blobs, the
//! challenge, tokens): [`Retry::run`] runs attempts until one is done, retrying 429s
//! (a registry-wide pause: its `Retry-After`, else the backoff), 5xx, timeouts and
//! connection errors with a doubling backoff up to `max_attempts`, never past the
//! `--deadline`; a registry that does not answer, or whose rate limit does not lift, is
//! given up on once for the rest of the run ([`Health`]).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use reqwest::StatusCode;

use super::error::Error;
use super::setup::Options;
use super::transport::{retry_after, tls_failure};

/// What one attempt of a request came to.
pub(super) enum Attempt<T> {
    /// Done: the request's result.
    Done(T),
    /// An answer the request has no use for: retried when transient (429, 5xx), else
    /// the request's error for it.
    Status(reqwest::Response),
    /// No answer.
    Failed(reqwest::Error),
    /// Try again at once, without counting an attempt (a stale token was dropped).
    Again,
}

/// A registry's health, as every request to it sees it.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// Why this registry was given up on for the rest of the run (it does not answer,
    /// or its rate limit does not lift): every later request fails with it at once,
    /// instead of each tag spending its own attempts.
    gave_up: Mutex<Option<String>>,
    /// No request to this registry starts before this (a 429's `Retry-After`, else the
    /// backoff): its tags wait together.
    paused_until: Mutex<Option<tokio::time::Instant>>,
    /// 429 answers in a row from this registry, whichever request got them; another
    /// answer resets it. At `max_attempts` the registry is given up on.
    pub(super) throttled: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The retry policy for requests to one registry.
pub(super) struct Retry<'a> {
    pub(super) options: &'a Options,
    pub(super) registry: &'a str,
    pub(super) health: &'a Health,
}

impl Retry<'_> {
    /// Runs `attempt` until it is done or fails: each attempt waits at the registry's
    /// gate ([`Retry::gate`]) and gets the request timeout; a transient answer waits
    /// and tries again; `unexpected` makes the error for any other answer.
    pub(super) async fn run<T, F, Fut>(
        &self,
        unexpected: impl Fn(&reqwest::Response) -> Error,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<Attempt<T>, Error>>,
    {
        let mut count = 0;
        loop {
            count += 1;
            let timeout = self.gate().await?;
            let wait = match attempt(timeout).await? {
                Attempt::Done(done) => return Ok(done),
                Attempt::Again => {
                    count -= 1;
                    continue;
                }
                Attempt::Status(response) => match self.transient_status(count, &response) {
                    Some(wait) => wait?,
                    None => return Err(unexpected(&response)),
                },
                Attempt::Failed(e) => self.transient_error(count, timeout, e)?,
            };
            tracing::debug!(
                registry = self.registry,
                attempt = count,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            self.wait(wait).await?;
        }
    }

    /// Before any request to a registry: fails at once if the registry was given up on
    /// or the deadline passed; waits out a registry-wide pause; returns the timeout for
    /// the request (cut to the time left before the deadline).
    async fn gate(&self) -> Result<Duration, Error> {
        let gave_up = || {
            lock(&self.health.gave_up).clone().map(|why| Error::GaveUp {
                registry: self.registry.to_owned(),
                why,
            })
        };
        if let Some(e) = gave_up() {
            return Err(e);
        }
        let pause = *lock(&self.health.paused_until);
        if let Some(until) = pause
            && until > tokio::time::Instant::now()
        {
            self.wait(until - tokio::time::Instant::now()).await?;
            if let Some(e) = gave_up() {
                return Err(e);
            }
        }
        match self.options.deadline {
            None => Ok(self.options.timeout),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::Deadline {
                        registry: self.registry.to_owned(),
                    });
                }
                Ok(self.options.timeout.min(left))
            }
        }
    }

    /// Sleeps `wait`, unless that would pass the deadline: then fails when it comes.
    async fn wait(&self, wait: Duration) -> Result<(), Error> {
        let until = tokio::time::Instant::now() + wait;
        match self.options.deadline {
            Some(deadline) if deadline < until => {
                tokio::time::sleep_until(deadline).await;
                Err(Error::Deadline {
                    registry: self.registry.to_owned(),
                })
            }
            _ => {
                tokio::time::sleep_until(until).await;
                Ok(())
            }
        }
    }

    /// Records that a registry is given up on for the rest of the run, and why.
    fn give_up(&self, e: Error) -> Error {
        let mut slot = lock(&self.health.gave_up);
        if slot.is_none() {
            // Every variant's message starts with the registry; GaveUp names it once.
            let message = e.to_string();
            let why = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, why)| why);
            *slot = Some(why.to_owned());
        }
        e
    }

    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.options.backoff * factor).min(self.options.backoff_cap)
    }

    /// For a 429 or 5xx: how long to wait before the next attempt, or the error once
    /// attempts (or patience, for a long `Retry-After`) run out. `None` for any other
    /// status, which is not worth retrying.
    fn transient_status(
        &self,
        attempt: u32,
        response: &reqwest::Response,
    ) -> Option<Result<Duration, Error>> {
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            // The limit is the registry's, not this request's: every tag of the
            // registry waits, and the registry's 429s in a row count against one budget.
            let retry_after = retry_after(response);
            let in_a_row = self
                .health
                .throttled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            if retry_after.is_some_and(|d| d > self.options.max_retry_after)
                || attempt >= self.options.max_attempts
                || in_a_row >= self.options.max_attempts
            {
                return Some(Err(self.give_up(Error::RateLimited {
                    registry: self.registry.to_owned(),
                    retry_after,
                    attempts: attempt,
                })));
            }
            let wait = retry_after.unwrap_or_else(|| self.backoff(in_a_row));
            let until = tokio::time::Instant::now() + wait;
            let mut paused = lock(&self.health.paused_until);
            *paused = Some(paused.map_or(until, |p| p.max(until)));
            return Some(Ok(wait));
        }
        if !status.is_server_error() {
            return None;
        }
        Some(if attempt >= self.options.max_attempts {
            Err(Error::Server {
                registry: self.registry.to_owned(),
                status: status.as_u16(),
                attempts: attempt,
            })
        } else {
            Ok(self.backoff(attempt))
        })
    }

    /// For a request that got no response: wait and retry timeouts and connection
    /// errors until the attempts run out; anything else fails at once.
    fn transient_error(
        &self,
        attempt: u32,
        timeout: Duration,
        e: reqwest::Error,
    ) -> Result<Duration, Error> {
        let last = attempt >= self.options.max_attempts;
        if e.is_redirect() {
            // The policy's reason is the innermost message.
            return Err(Error::Insecure {
                registry: self.registry.to_owned(),
                why: super::error::root_cause(&e),
            });
        }
        if let Some(tls) = tls_failure(&e) {
            // A handshake fails the same way every time: no retries.
            return Err(Error::Tls {
                registry: self.registry.to_owned(),
                plain_http: matches!(
                    tls,
                    rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
                ),
                why: tls.to_string(),
            });
        }
        if e.is_timeout() {
            if last {
                // A registry that does not answer is given up on once, not per tag.
                return Err(self.give_up(Error::Timeout {
                    registry: self.registry.to_owned(),
                    timeout,
                    attempts: attempt,
                }));
            }
            return Ok(self.backoff(attempt));
        }
        if last || !(e.is_connect() || e.is_request()) {
            let e = Error::Transport {
                registry: self.registry.to_owned(),
                attempts: attempt,
                source: e.without_url(),
            };
            return Err(if last { self.give_up(e) } else { e });
        }
        Ok(self.backoff(attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (options, health) = (Options::default(), Health::default());
        let retry = Retry {
            options: &options,
            registry: "r",
            health: &health,
        };
        let waits: Vec<u64> = (1..=6)
            .map(|a| retry.backoff(a).as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000, 8000, 8000]);
    }
}
