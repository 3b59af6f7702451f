//! A progress line on stderr for runs that take more than a moment; nothing at all when
//! stderr is not a terminal (CI logs, pipes) or when the run ends quickly.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run may take before it gets a progress line.
const QUIET_FOR: Duration = Duration::from_millis(300);

/// Counts finished items; draws only on a terminal, and only after 0.3 s.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// Starts the line (only when stderr is a terminal), counting `what`.
    #[must_use]
    pub fn start(what: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} {msg}") {
            bar.set_style(style);
        }
        bar.set_message(what);
        if std::io::stderr().is_terminal() {
            let later = bar.clone();
            std::thread::spawn(move || {
                std::thread::sleep(QUIET_FOR);
                if !later.is_finished() {
                    later.set_draw_target(ProgressDrawTarget::stderr());
                    later.enable_steady_tick(Duration::from_millis(120));
                }
            });
        }
        Self { bar }
    }

    /// One more item done.
    pub fn tick(&self) {
        self.bar.inc(1);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
