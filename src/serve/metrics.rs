//! `/metrics`: the daemon's figures in the Prometheus text format (`prometheus-client`).
//!
//! Counted here: full runs by trigger and skipped ticks, repositories processed by
//! result, pull requests opened/updated/closed, webhooks by event and outcome, run and
//! repository durations. Read at scrape time from process-wide counters: registry
//! requests by result ([`crate::registry::stats`]), GitHub API calls and the rate limit
//! remaining in GitHub's last answer ([`crate::forge::github::process_stats`]).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The daemon's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `repin_runs_total{result}`: full runs.
    pub runs: Family<Labels, Counter>,
    /// `repin_runs_skipped_total`: ticks skipped while a run was going.
    pub runs_skipped: Counter,
    /// `repin_repositories_total{result}`: repositories processed.
    pub repositories: Family<Labels, Counter>,
    /// `repin_pull_requests_total{action}`: pull requests opened, updated, closed.
    pub pull_requests: Family<Labels, Counter>,
    /// `repin_webhooks_total{event,result}`: deliveries.
    pub webhooks: Family<Labels, Counter>,
    /// `repin_run_seconds`: full run durations.
    pub run_seconds: Histogram,
    /// `repin_repository_seconds`: per-repository durations.
    pub repository_seconds: Histogram,
}

/// Figures other modules keep, read at each scrape.
#[derive(Debug)]
struct ProcessStats;

impl Collector for ProcessStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = crate::registry::stats::counts();
        let sample = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "repin_registry_requests",
            "Registry manifest and blob requests, by result.",
            None,
            sample.metric_type(),
        )?;
        for (result, n) in counts {
            ConstCounter::new(n).encode(family.encode_family(&[("result", result)])?)?;
        }
        let (calls, remaining) = crate::forge::github::process_stats();
        let calls = ConstCounter::new(calls);
        calls.encode(encoder.encode_descriptor(
            "repin_github_api_calls",
            "GitHub API calls.",
            None,
            calls.metric_type(),
        )?)?;
        if let Some(remaining) = remaining {
            let gauge = ConstGauge::new(remaining);
            gauge.encode(encoder.encode_descriptor(
                "repin_github_rate_limit_remaining",
                "Requests left in the GitHub rate limit window, as of GitHub's last answer.",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Self {
            runs: Family::default(),
            runs_skipped: Counter::default(),
            repositories: Family::default(),
            pull_requests: Family::default(),
            webhooks: Family::default(),
            // 0.5 s .. ~2.3 h
            run_seconds: Histogram::new(exponential_buckets(0.5, 3.0, 10)),
            // 0.1 s .. ~33 min
            repository_seconds: Histogram::new(exponential_buckets(0.1, 3.0, 10)),
            registry: Registry::default(),
        };
        registry.register(
            "repin_runs",
            "Full runs over every repository, by trigger.",
            metrics.runs.clone(),
        );
        registry.register(
            "repin_runs_skipped",
            "Scheduled ticks skipped because the previous run was still going.",
            metrics.runs_skipped.clone(),
        );
        registry.register(
            "repin_repositories_processed",
            "Repositories processed, by result.",
            metrics.repositories.clone(),
        );
        registry.register(
            "repin_pull_requests",
            "Pull requests changed, by action (opened, updated, closed).",
            metrics.pull_requests.clone(),
        );
        registry.register(
            "repin_webhooks",
            "Webhook deliveries, by event and outcome.",
            metrics.webhooks.clone(),
        );
        registry.register(
            "repin_run_duration_seconds",
            "How long full runs took.",
            metrics.run_seconds.clone(),
        );
        registry.register(
            "repin_repository_duration_seconds",
            "How long one repository took.",
            metrics.repository_seconds.clone(),
        );
        registry.register_collector(Box::new(ProcessStats));
        Self {
            registry,
            ..metrics
        }
    }

    /// Counts a labelled event.
    pub fn count(family: &Family<Labels, Counter>, labels: &[(&'static str, &str)], n: u64) {
        let labels: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        family.get_or_create(&labels).inc_by(n);
    }

    /// The text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        Metrics::count(&m.pull_requests, &[("action", "opened")], 2);
        m.run_seconds.observe(1.5);
        let text = m.render();
        assert!(
            text.contains("repin_pull_requests_total{action=\"opened\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE repin_run_duration_seconds histogram"));
        assert!(text.contains("repin_registry_requests_total{result=\"ok\"}"));
        assert!(text.contains("repin_github_api_calls_total"));
        assert!(text.ends_with("# EOF\n"));
    }
}
