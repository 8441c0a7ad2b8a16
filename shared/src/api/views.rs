//! The JSON the API returns. Field order follows the published quickstart.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{
    self, Backoff, Execution, ExecutionId, FailureCount, FireTime, Job, JobId, NoticeFormat,
    RetryMs, RunId, RunStatus, Trigger, time,
};

#[derive(Serialize)]
pub struct Data<T> {
    pub data: T,
}

#[derive(Serialize)]
pub struct ListPage<T> {
    pub data: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct Ok {
    pub ok: bool,
}

#[derive(Serialize)]
pub struct JobView<'a> {
    id: JobId,
    name: &'a str,
    schedule_type: &'static str,
    schedule: &'a str,
    timezone: &'static str,
    url: &'a str,
    method: &'static str,
    headers: BTreeMap<&'a str, &'a str>,
    /// Present only when the job sends a body (the quickstart's job has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    timeout_ms: u32,
    max_retries: u32,
    enabled: bool,
    failure_notify: bool,
    last_status: Option<RunStatus>,
    #[serde(serialize_with = "time::serialize_opt")]
    last_run_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "time::serialize_opt")]
    next_run_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "time::serialize")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize")]
    updated_at: DateTime<Utc>,
    // Policies: each present only when it is not the default, like `body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_backoff: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_base_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_max_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_status: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expect_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_after_failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_disable_after_failures: Option<u32>,
    /// State: present while the job is failing, and while it is paused with a reason.
    #[serde(skip_serializing_if = "is_zero")]
    consecutive_failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_format: Option<&'static str>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "time::serialize_opt"
    )]
    starts_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "time::serialize_opt"
    )]
    ends_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catchup_window_s: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overlap: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter_s: Option<u16>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(j: &'a Job) -> Self {
        let s = &j.spec;
        Self {
            id: j.id,
            name: s.name.as_str(),
            schedule_type: s.schedule.kind().as_str(),
            schedule: s.schedule.text(),
            timezone: s.schedule.timezone().name(),
            url: s.request.url.as_str(),
            method: s.request.method.as_str(),
            headers: s.request.headers.iter().collect(),
            body: s.request.body.as_ref().map(|b| b.as_str()),
            timeout_ms: s.request.timeout.get(),
            max_retries: s.max_retries.get(),
            enabled: j.enabled,
            failure_notify: s.failure_notify,
            last_status: j.last_status,
            last_run_at: j.last_run_at,
            next_run_at: j.next_run_at.map(|t| j.fires_at(t)),
            created_at: j.created_at,
            updated_at: j.updated_at,
            retry_backoff: s.retry.backoff_if_set().map(Backoff::as_str),
            retry_base_ms: s.retry.base.map(RetryMs::get),
            retry_max_ms: s.retry.max.map(RetryMs::get),
            expect_status: s.success.statuses_if_set(),
            expect_body: s.success.body().map(|b| b.as_str()),
            tags: s.tags.iter().map(|t| t.as_str()).collect(),
            notify_after_failures: s.alerts.notify_after_if_set(),
            auto_disable_after_failures: s.alerts.disable_after.map(FailureCount::get),
            consecutive_failures: j.consecutive_failures,
            paused_reason: j.paused_reason.as_ref().map(|r| r.as_str()),
            notify_url: s.notices.url.as_ref().map(|u| u.as_str()),
            notify_format: s.notices.format_if_set().map(NoticeFormat::as_str),
            starts_at: s.schedule.window().starts_at,
            ends_at: s.schedule.window().ends_at,
            catchup_window_s: s.firing.catch_up.map(|w| w.secs()),
            overlap: s.firing.guards_overlap().then(|| s.firing.overlap.as_str()),
            jitter_s: Some(s.firing.jitter.secs()).filter(|s| *s > 0),
        }
    }
}

/// Upcoming runs (of a job, or of a previewed schedule), earliest first.
#[derive(Serialize)]
pub struct UpcomingList {
    data: Vec<UpcomingRun>,
}

/// A run to come: `fires_at` with a job's jitter, `fires_by` in a preview with jitter.
#[derive(Serialize)]
struct UpcomingRun {
    #[serde(serialize_with = "time::serialize")]
    scheduled_at: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "time::serialize_opt"
    )]
    fires_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "time::serialize_opt"
    )]
    fires_by: Option<DateTime<Utc>>,
}

impl UpcomingList {
    pub fn of(runs: &[domain::UpcomingRun]) -> Self {
        let data = runs
            .iter()
            .map(|r| {
                let (fires_at, fires_by) = match r.fires {
                    FireTime::OnTime => (None, None),
                    FireTime::At(t) => (Some(t), None),
                    FireTime::By(t) => (None, Some(t)),
                };
                UpcomingRun {
                    scheduled_at: r.scheduled_at,
                    fires_at,
                    fires_by,
                }
            })
            .collect();
        Self { data }
    }
}

/// What pause and resume return.
#[derive(Serialize)]
pub struct JobStateView<'a> {
    id: JobId,
    name: &'a str,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused_reason: Option<&'a str>,
}

impl<'a> From<&'a Job> for JobStateView<'a> {
    fn from(j: &'a Job) -> Self {
        Self {
            id: j.id,
            name: j.spec.name.as_str(),
            enabled: j.enabled,
            paused_reason: j.paused_reason.as_ref().map(|r| r.as_str()),
        }
    }
}

/// The quickstart's fields first, then the rest of the record.
#[derive(Serialize)]
pub struct ExecutionView<'a> {
    id: ExecutionId,
    status: RunStatus,
    http_status: Option<u16>,
    response_body: Option<&'a str>,
    error: Option<&'a str>,
    attempt: u32,
    duration_ms: u64,
    #[serde(serialize_with = "time::serialize")]
    started_at: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize")]
    finished_at: DateTime<Utc>,
    job_id: JobId,
    run_id: RunId,
    trigger: Trigger,
    #[serde(serialize_with = "time::serialize")]
    scheduled_at: DateTime<Utc>,
}

impl<'a> ExecutionView<'a> {
    /// `None` for an attempt still in flight (never listed).
    pub fn of(e: &'a Execution) -> Option<Self> {
        let o = e.outcome.as_ref()?;
        Some(Self {
            id: e.id,
            status: o.status,
            http_status: o.http_status,
            response_body: o.response_body.as_deref(),
            error: o.error.as_deref(),
            attempt: e.attempt,
            duration_ms: o.duration_ms,
            started_at: e.started_at,
            finished_at: o.finished_at,
            job_id: e.job_id,
            run_id: e.run_id,
            trigger: e.trigger,
            scheduled_at: e.scheduled_at,
        })
    }
}

/// Cursors are opaque to clients: the last id of a page, base64url.
pub fn encode_cursor(id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(s: &str) -> Option<Uuid> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    Uuid::from_slice(&bytes).ok()
}
