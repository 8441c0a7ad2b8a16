//! The hosted functions' metrics: the same ones as the embedded server's (`crate::metrics`),
//! recorded by `metrics_cloudwatch_embedded` and written after each invocation as CloudWatch
//! embedded metric format documents among the function's JSON log lines (namespace
//! `KrafterCron`; a metric's labels are its dimensions). CloudWatch turns them into metrics
//! with no API call; the template's dashboard and alarms read them.

use std::sync::OnceLock;

use metrics_cloudwatch_embedded::{Builder, Collector};
use tracing::warn;

/// The CloudWatch namespace of every Krafter Cron metric.
pub const NAMESPACE: &str = "KrafterCron";

static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the collector as the process's metrics recorder (once).
pub fn init_metrics() {
    COLLECTOR.get_or_init(|| {
        let collector = Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .init()
            .expect("the first metrics recorder of the process");
        crate::metrics::describe();
        collector
    });
}

/// Writes what was recorded since the last flush to stdout (nothing without a collector).
/// Called at the end of every invocation: a frozen function runs no background flush.
pub fn flush_metrics() {
    if let Some(c) = COLLECTOR.get()
        && let Err(e) = c.flush(std::io::stdout())
    {
        warn!(error = %e, "could not write the metrics");
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{AttemptOutcome, RunStatus};

    fn flush_metrics_to(out: impl std::io::Write) -> std::io::Result<()> {
        COLLECTOR.get().expect("installed").flush(out)
    }

    #[test]
    fn the_services_metrics_are_written_as_embedded_metric_format_documents() {
        init_metrics();
        let outcome = AttemptOutcome {
            status: RunStatus::Failed,
            http_status: Some(500),
            response_body: None,
            error: None,
            duration_ms: 250,
            finished_at: Utc::now(),
        };
        crate::metrics::attempt_ended(&outcome);
        crate::metrics::runs_fired(2);
        let mut out = Vec::new();
        flush_metrics_to(&mut out).unwrap();
        let docs: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let named = |name: &str| {
            docs.iter()
                .find(|d| {
                    d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                        .as_array()
                        .is_some_and(|m| m.iter().any(|m| m["Name"] == name))
                })
                .unwrap_or_else(|| panic!("no {name} in {docs:#?}"))
                .clone()
        };
        let attempts = named(crate::metrics::ATTEMPTS);
        assert_eq!(
            attempts["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            NAMESPACE
        );
        assert_eq!(attempts["outcome"], "failed", "the label is a dimension");
        assert!(
            attempts[crate::metrics::ATTEMPTS]
                .as_u64()
                .is_some_and(|n| n >= 1)
        );
        let fired = named(crate::metrics::RUNS_FIRED);
        assert!(
            fired[crate::metrics::RUNS_FIRED]
                .as_u64()
                .is_some_and(|n| n >= 2)
        );
        let duration = named(crate::metrics::WEBHOOK_DURATION);
        let unit = duration["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Name"] == crate::metrics::WEBHOOK_DURATION)
            .unwrap()["Unit"]
            .clone();
        assert_eq!(unit, "Seconds");
    }
}
