//! `[serve]` in the service config: how `repin serve` runs (schedule, listen address,
//! concurrency, webhook secret, debounce, shutdown deadline).

use std::net::SocketAddr;
use std::time::Duration;

use toml::Spanned;

use super::diag::Diagnostics;
use super::settings::{self, Schedule};

/// The largest webhook body accepted by default: GitHub caps payloads at 25 MB, and a
/// push with the maximum of 20 commits' file lists stays far below this.
pub const DEFAULT_MAX_BODY: usize = 5 * 1024 * 1024;

/// The daemon's settings, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Where the HTTP server (webhooks, health, metrics) listens.
    pub listen: SocketAddr,
    /// When full runs over every repository start; none: webhooks and startup only.
    pub schedule: Option<Schedule>,
    /// Repositories processed at once.
    pub concurrency: usize,
    /// A push starts a run this long after the last push to the same repository.
    pub debounce: Duration,
    /// On SIGTERM, in-flight repositories get this long to finish.
    pub shutdown_timeout: Duration,
    /// The environment variable holding the webhook secret; webhooks are refused
    /// (404) when it is not set.
    pub webhook_secret_env: String,
    /// Webhook bodies larger than this are refused (413).
    pub max_body: usize,
    /// Run every repository once at startup.
    pub run_at_start: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            schedule: None,
            concurrency: 4,
            debounce: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(60),
            webhook_secret_env: "REPIN_WEBHOOK_SECRET".into(),
            max_body: DEFAULT_MAX_BODY,
            run_at_start: false,
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServe {
    listen: Option<Spanned<String>>,
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    concurrency: Option<Spanned<usize>>,
    debounce: Option<Spanned<String>>,
    shutdown_timeout: Option<Spanned<String>>,
    webhook_secret_env: Option<String>,
    max_body: Option<Spanned<usize>>,
    run_at_start: Option<bool>,
}

impl RawServe {
    pub(super) fn check(&self, diags: &mut Diagnostics<'_>) -> ServeConfig {
        let mut out = ServeConfig::default();
        if let Some(v) = &self.listen {
            match v.get_ref().parse::<SocketAddr>() {
                Ok(addr) => out.listen = addr,
                Err(_) => diags.error(
                    Some(v.span()),
                    format!(
                        "invalid listen address {:?} (write e.g. \"0.0.0.0:8080\")",
                        v.get_ref()
                    ),
                ),
            }
        }
        out.schedule = settings::schedule(self.schedule.as_ref(), self.timezone.as_ref(), diags);
        let positive = |v: &Spanned<usize>, what: &str, diags: &mut Diagnostics<'_>| {
            if *v.get_ref() == 0 {
                diags.error(Some(v.span()), format!("{what} must be at least 1"));
                None
            } else {
                Some(*v.get_ref())
            }
        };
        if let Some(n) = self
            .concurrency
            .as_ref()
            .and_then(|v| positive(v, "concurrency", diags))
        {
            out.concurrency = n;
        }
        if let Some(n) = self
            .max_body
            .as_ref()
            .and_then(|v| positive(v, "max_body", diags))
        {
            out.max_body = n;
        }
        if let Some(d) = self
            .debounce
            .as_ref()
            .and_then(|v| settings::duration(v, diags))
        {
            out.debounce = d;
        }
        if let Some(d) = self
            .shutdown_timeout
            .as_ref()
            .and_then(|v| settings::duration(v, diags))
        {
            out.shutdown_timeout = d;
        }
        if let Some(name) = &self.webhook_secret_env {
            out.webhook_secret_env.clone_from(name);
        }
        if let Some(b) = self.run_at_start {
            out.run_at_start = b;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ServeConfig, parse_service};
    use std::time::Duration;

    #[test]
    fn defaults_and_overrides() {
        let config = parse_service("s.toml", "").unwrap();
        assert_eq!(config.serve, ServeConfig::default());
        let text = "[serve]\nlisten = \"127.0.0.1:9000\"\nschedule = \"30 2 * * *\"\n\
                    concurrency = 8\ndebounce = \"5s\"\nrun_at_start = true\n";
        let serve = parse_service("s.toml", text).unwrap().serve;
        assert_eq!(serve.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(serve.schedule.unwrap().expression, "30 2 * * *");
        assert_eq!(serve.concurrency, 8);
        assert_eq!(serve.debounce, Duration::from_secs(5));
        assert!(serve.run_at_start);
    }

    #[test]
    fn bad_values_are_reported_at_their_lines() {
        let text = "[serve]\nlisten = \"everywhere\"\nschedule = \"* * *\"\nconcurrency = 0\n\
                    debounce = \"soon\"\nlisten_on = 1\n";
        let err = parse_service("s.toml", text).unwrap_err().to_string();
        assert!(err.contains("s.toml:6:1"), "{err}");
        let text = "[serve]\nlisten = \"everywhere\"\nschedule = \"* * *\"\nconcurrency = 0\n\
                    debounce = \"soon\"\n";
        let err = parse_service("s.toml", text).unwrap_err().to_string();
        for expected in [
            "s.toml:2:10: invalid listen address \"everywhere\"",
            "s.toml:3:12: invalid schedule \"* * *\": a schedule has 5 fields",
            "s.toml:4:15: concurrency must be at least 1",
            "s.toml:5:12: invalid duration \"soon\"",
        ] {
            assert!(err.contains(expected), "{expected} in\n{err}");
        }
    }
}
