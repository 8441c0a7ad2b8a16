//! The service's metrics, named once for both runtimes, through the `metrics` facade: the
//! embedded server exports them to Prometheus (`embedded::metrics`); without a recorder
//! installed (the hosted functions emit their own in CloudWatch's format) they cost nothing.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `krafter_runs_fired_total` | counter | |
//! | `krafter_attempts_total` | counter | `outcome`: success, failed, skipped |
//! | `krafter_run_lateness_seconds` | histogram | (a scheduled run's first attempt: its start after its fire time) |
//! | `krafter_webhook_duration_seconds` | histogram | |
//! | `krafter_queue_depth` | gauge | (runs queued and due) |
//! | `krafter_attempts_in_flight` | gauge | |
//! | `krafter_retries_pending` | gauge | |
//! | `krafter_jobs` | gauge | `state`: enabled, paused |
//! | `krafter_api_requests_total` | counter | `route`, `status` |
//! | `krafter_api_request_duration_seconds` | histogram | `route` |
//! | `krafter_store_write_seconds` | histogram | (one write transaction) |

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use crate::domain::{AttemptOutcome, Job, RunMessage, RunStatus, Trigger};

pub const RUNS_FIRED: &str = "krafter_runs_fired_total";
pub const ATTEMPTS: &str = "krafter_attempts_total";
pub const RUN_LATENESS: &str = "krafter_run_lateness_seconds";
pub const WEBHOOK_DURATION: &str = "krafter_webhook_duration_seconds";
pub const QUEUE_DEPTH: &str = "krafter_queue_depth";
pub const IN_FLIGHT: &str = "krafter_attempts_in_flight";
pub const RETRIES_PENDING: &str = "krafter_retries_pending";
pub const JOBS: &str = "krafter_jobs";
pub const API_REQUESTS: &str = "krafter_api_requests_total";
pub const API_DURATION: &str = "krafter_api_request_duration_seconds";
pub const STORE_WRITE: &str = "krafter_store_write_seconds";

/// Whether a recorder is installed: until one is, recording is skipped altogether (the
/// facade would drop the values anyway, after their labels were built).
static ENABLED: AtomicBool = AtomicBool::new(false);

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Describes every metric (its unit and meaning) to the recorder just installed, and starts
/// recording.
pub fn describe() {
    ENABLED.store(true, Ordering::Relaxed);
    describe_counter!(RUNS_FIRED, Unit::Count, "Runs made by firing schedules");
    describe_counter!(ATTEMPTS, Unit::Count, "Attempts that ended, by outcome");
    describe_histogram!(
        RUN_LATENESS,
        Unit::Seconds,
        "How late a scheduled run's first attempt started after its fire time"
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "How long a webhook call took"
    );
    describe_gauge!(QUEUE_DEPTH, Unit::Count, "Runs queued and due");
    describe_gauge!(IN_FLIGHT, Unit::Count, "Attempts in flight");
    describe_gauge!(RETRIES_PENDING, Unit::Count, "Retries waiting in the queue");
    describe_gauge!(JOBS, Unit::Count, "Jobs by state");
    describe_counter!(
        API_REQUESTS,
        Unit::Count,
        "API requests by route and status"
    );
    describe_histogram!(
        API_DURATION,
        Unit::Seconds,
        "How long the API took to answer"
    );
    describe_histogram!(
        STORE_WRITE,
        Unit::Seconds,
        "How long a store write transaction took"
    );
}

/// Runs made by firing schedules (each run once, however many attempts it takes).
pub fn runs_fired(n: usize) {
    if !enabled() {
        return;
    }
    if n > 0 {
        counter!(RUNS_FIRED).increment(n as u64);
    }
}

/// An attempt began: a scheduled run's first attempt records how late it started.
pub fn attempt_started(job: &Job, m: &RunMessage, started_at: DateTime<Utc>) {
    if !enabled() {
        return;
    }
    if m.attempt == 1 && m.trigger == Trigger::Schedule {
        let late = (started_at - job.fires_at(m.scheduled_at))
            .to_std()
            .unwrap_or_default();
        histogram!(RUN_LATENESS).record(late.as_secs_f64());
    }
}

/// An attempt ended (sent, or skipped under the overlap policy).
pub fn attempt_ended(o: &AttemptOutcome) {
    if !enabled() {
        return;
    }
    counter!(ATTEMPTS, "outcome" => o.status.as_str()).increment(1);
    if o.status != RunStatus::Skipped {
        histogram!(WEBHOOK_DURATION).record(o.duration_ms as f64 / 1000.0);
    }
}

/// A run not started under its job's overlap policy.
pub fn attempt_skipped() {
    if !enabled() {
        return;
    }
    counter!(ATTEMPTS, "outcome" => RunStatus::Skipped.as_str()).increment(1);
}

/// An API request was answered.
pub fn api_request(path: &str, status: u16, took: Duration) {
    if !enabled() {
        return;
    }
    let route = route_of(path);
    counter!(API_REQUESTS, "route" => route, "status" => status.to_string()).increment(1);
    histogram!(API_DURATION, "route" => route).record(took.as_secs_f64());
}

/// A store write transaction took `took`.
pub fn store_write(took: Duration) {
    if !enabled() {
        return;
    }
    histogram!(STORE_WRITE).record(took.as_secs_f64());
}

/// The state of the queue and the jobs, sampled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depths {
    pub queue_due: u64,
    pub in_flight: u64,
    pub retries_pending: u64,
    pub jobs_enabled: u64,
    pub jobs_paused: u64,
}

pub fn depths(d: Depths) {
    if !enabled() {
        return;
    }
    gauge!(QUEUE_DEPTH).set(d.queue_due as f64);
    gauge!(IN_FLIGHT).set(d.in_flight as f64);
    gauge!(RETRIES_PENDING).set(d.retries_pending as f64);
    gauge!(JOBS, "state" => "enabled").set(d.jobs_enabled as f64);
    gauge!(JOBS, "state" => "paused").set(d.jobs_paused as f64);
}

/// A request's route, with ids as placeholders (a bounded set of label values).
pub fn route_of(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "api", "v1", "health"] => "/api/v1/health",
        ["", "api", "v1", "cron", rest @ ..] => match rest {
            ["jobs"] => "/jobs",
            ["jobs", _] => "/jobs/{id}",
            ["jobs", _, "executions"] => "/jobs/{id}/executions",
            ["jobs", _, "executions", _] => "/jobs/{id}/executions/{execution_id}",
            ["jobs", _, "trigger"] => "/jobs/{id}/trigger",
            ["jobs", _, "pause"] => "/jobs/{id}/pause",
            ["jobs", _, "resume"] => "/jobs/{id}/resume",
            ["jobs", _, "backfill"] => "/jobs/{id}/backfill",
            ["jobs", _, "upcoming"] => "/jobs/{id}/upcoming",
            ["schedules", "preview"] => "/schedules/preview",
            ["audit"] => "/audit",
            ["team", "signing-secret"] => "/team/signing-secret",
            ["team", "signing-secret", "rotate"] => "/team/signing-secret/rotate",
            _ => "other",
        },
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_their_ids_as_placeholders() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(route_of(&format!("/api/v1/cron/jobs/{id}")), "/jobs/{id}");
        assert_eq!(
            route_of(&format!("/api/v1/cron/jobs/{id}/executions/{id}")),
            "/jobs/{id}/executions/{execution_id}"
        );
        assert_eq!(route_of("/api/v1/health"), "/api/v1/health");
        assert_eq!(route_of("/wp-admin/x"), "other");
    }
}
