//! Stored records: the flat, primitive form of jobs, executions and keys that every store
//! adapter writes (SQLite columns, DynamoDB attributes). Writing one is infallible; reading
//! one back checks every value again through the domain parsers, so a row or item edited by
//! hand can never become a `Job` that the API would have refused. Times are Unix seconds.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

use super::filter::Tags;
use super::policy::{
    AlertPolicy, Backoff, CatchUpWindow, ExpectBody, FailureCount, NoticeFormat, NoticeSpec,
    PauseReason, RetryMs, RetrySpec, StatusMatch, SuccessRule,
};
use super::time::from_unix;
use super::{
    ApiKey, AttemptOutcome, Body, Execution, HeaderList, HttpMethod, Job, JobName, JobSpec,
    KeyHash, KeyPrefix, MaxRetries, RunStatus, Scopes, SigningSecret, TargetUrl, TeamId,
    TeamSecrets, TimeoutMs, Trigger, WebhookSpec,
};
use super::{AuditAction, AuditEntry, AuditOutcome, FiringPolicy, Jitter, Overlap, RunMarker};
use super::{IdempotencyKey, IdempotencyRecord, RequestFingerprint, StoredResponse};
use crate::schedule::{Schedule, ScheduleType, Timezone, Window};

/// A stored value that does not read back as a valid domain value.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct RecordError {
    pub what: String,
    pub detail: String,
}

fn bad(kind: &str, id: &str, field: &str, e: impl Display) -> RecordError {
    RecordError {
        what: format!("{kind} {id} {field}"),
        detail: e.to_string(),
    }
}

/// Every stored field of a job, by name: the SQLite columns and the DynamoDB attributes
/// (besides the tables' own keys) are these. One list: adding a field to [`JobRecord`]
/// without adding it here fails `record::tests::the_job_fields_are_the_records_fields`, and
/// a store missing it fails the stores' agreement tests.
pub const JOB_FIELDS: [&str; 40] = [
    "id",
    "team",
    "name",
    "schedule_type",
    "schedule",
    "timezone",
    "url",
    "method",
    "headers",
    "body",
    "timeout_ms",
    "max_retries",
    "failure_notify",
    "enabled",
    "generation",
    "version",
    "next_run_at",
    "last_status",
    "last_run_at",
    "created_at",
    "updated_at",
    "retry_backoff",
    "retry_base_ms",
    "retry_max_ms",
    "expect_status",
    "expect_body",
    "tags",
    "notify_after_failures",
    "auto_disable_after_failures",
    "consecutive_failures",
    "paused_reason",
    "last_run_id",
    "notify_url",
    "notify_format",
    "starts_at",
    "ends_at",
    "catchup_window_s",
    "overlap",
    "jitter_s",
    "run_marker",
];

/// The fields a job update writes (`JobStore::update`): its definition and state. Never
/// the keys, `created_at`, or the run status fields, which only the executor writes.
pub fn job_updated_fields() -> impl Iterator<Item = &'static str> {
    JOB_FIELDS.into_iter().filter(|f| {
        !matches!(
            *f,
            "id" | "team"
                | "created_at"
                | "last_status"
                | "last_run_at"
                | "consecutive_failures"
                | "last_run_id"
                | "run_marker"
        )
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub team: String,
    pub name: String,
    pub schedule_type: String,
    pub schedule: String,
    pub timezone: String,
    pub url: String,
    pub method: String,
    /// In order, as given.
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    pub timeout_ms: i64,
    pub max_retries: i64,
    pub failure_notify: bool,
    pub enabled: bool,
    pub generation: u64,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Policies: each absent at its default (records written before policies have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_base_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_max_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_after_failures: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_disable_after_failures: Option<i64>,
    /// Run status, like `last_status`: written only by the run results.
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// Run status: the run whose end `last_status` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_format: Option<String>,
    /// The schedule's window, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup_window_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_s: Option<i64>,
    /// Run state, written only by the executor: the overlap marker (`RunMarker`), JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_marker: Option<String>,
}

impl From<&Job> for JobRecord {
    fn from(job: &Job) -> Self {
        let s = &job.spec;
        Self {
            id: job.id.to_string(),
            team: job.team.as_str().to_owned(),
            name: s.name.as_str().to_owned(),
            schedule_type: s.schedule.kind().as_str().to_owned(),
            schedule: s.schedule.text().to_owned(),
            timezone: s.schedule.timezone().name().to_owned(),
            url: s.request.url.as_str().to_owned(),
            method: s.request.method.as_str().to_owned(),
            headers: s
                .request
                .headers
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            body: s.request.body.as_ref().map(|b| b.as_str().to_owned()),
            timeout_ms: i64::from(s.request.timeout.get()),
            max_retries: i64::from(s.max_retries.get()),
            failure_notify: s.failure_notify,
            enabled: job.enabled,
            generation: job.generation,
            version: job.version,
            next_run_at: job.next_run_at.map(|t| t.timestamp()),
            last_status: job.last_status.map(|s| s.as_str().to_owned()),
            last_run_at: job.last_run_at.map(|t| t.timestamp()),
            created_at: job.created_at.timestamp(),
            updated_at: job.updated_at.timestamp(),
            retry_backoff: s.retry.backoff_if_set().map(|b| b.as_str().to_owned()),
            retry_base_ms: s.retry.base.map(|m| i64::from(m.get())),
            retry_max_ms: s.retry.max.map(|m| i64::from(m.get())),
            expect_status: s.success.statuses_if_set(),
            expect_body: s.success.body().map(|b| b.as_str().to_owned()),
            tags: (!s.tags.is_empty())
                .then(|| s.tags.iter().map(|t| t.as_str().to_owned()).collect()),
            notify_after_failures: s.alerts.notify_after_if_set().map(i64::from),
            auto_disable_after_failures: s.alerts.disable_after.map(|n| i64::from(n.get())),
            consecutive_failures: job.consecutive_failures,
            paused_reason: job.paused_reason.as_ref().map(|r| r.as_str().to_owned()),
            last_run_id: job.last_run_id.map(|r| r.to_string()),
            notify_url: s.notices.url.as_ref().map(|u| u.as_str().to_owned()),
            notify_format: s.notices.format_if_set().map(|f| f.as_str().to_owned()),
            starts_at: s.schedule.window().starts_at.map(|t| t.timestamp()),
            ends_at: s.schedule.window().ends_at.map(|t| t.timestamp()),
            catchup_window_s: s.firing.catch_up.map(|w| i64::from(w.secs())),
            overlap: s
                .firing
                .guards_overlap()
                .then(|| s.firing.overlap.as_str().to_owned()),
            jitter_s: Some(i64::from(s.firing.jitter.secs())).filter(|s| *s > 0),
            run_marker: job.run_marker.to_stored(),
        }
    }
}

/// A stored job's retry policy and success rule, checked again.
fn retry_and_success(r: &JobRecord) -> Result<(RetrySpec, SuccessRule), RecordError> {
    let bad = |field: &str, e: &dyn Display| bad("job", &r.id, field, e);
    let ms = |v: Option<i64>, field: &str| {
        v.map(RetryMs::parse)
            .transpose()
            .map_err(|e| bad(field, &e))
    };
    let backoff = match &r.retry_backoff {
        Some(b) => Backoff::parse(b).map_err(|e| bad("retry_backoff", &e))?,
        None => Backoff::Linear,
    };
    let retry = RetrySpec::new(
        backoff,
        ms(r.retry_base_ms, "retry_base_ms")?,
        ms(r.retry_max_ms, "retry_max_ms")?,
    )
    .map_err(|e| bad("retry_max_ms", &e))?;
    let statuses = match &r.expect_status {
        Some(list) => list
            .iter()
            .map(|s| StatusMatch::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("expect_status", &e))?,
        None => SuccessRule::default().statuses().to_vec(),
    };
    let body = r
        .expect_body
        .as_deref()
        .map(ExpectBody::parse)
        .transpose()
        .map_err(|e| bad("expect_body", &e))?;
    let success = SuccessRule::new(statuses, body).map_err(|e| bad("expect_status", &e))?;
    Ok((retry, success))
}

/// A stored job's alert policy and notice route, checked again.
fn alerts_and_notices(r: &JobRecord) -> Result<(AlertPolicy, NoticeSpec), RecordError> {
    let bad = |field: &str, e: &dyn Display| bad("job", &r.id, field, e);
    let count = |v: Option<i64>, field: &str| {
        v.map(FailureCount::parse)
            .transpose()
            .map_err(|e| bad(field, &e))
    };
    let alerts = AlertPolicy {
        notify_after: count(r.notify_after_failures, "notify_after_failures")?
            .unwrap_or(FailureCount::ONE),
        disable_after: count(r.auto_disable_after_failures, "auto_disable_after_failures")?,
    };
    let notices = NoticeSpec {
        url: r
            .notify_url
            .as_deref()
            .map(TargetUrl::parse)
            .transpose()
            .map_err(|e| bad("notify_url", &e))?,
        format: match &r.notify_format {
            Some(f) => NoticeFormat::parse(f).map_err(|e| bad("notify_format", &e))?,
            None => NoticeFormat::Json,
        },
    };
    Ok((alerts, notices))
}

/// A stored job's firing policy, checked again.
fn firing(r: &JobRecord) -> Result<FiringPolicy, RecordError> {
    let bad = |field: &str, e: &dyn Display| bad("job", &r.id, field, e);
    Ok(FiringPolicy {
        catch_up: r
            .catchup_window_s
            .map(CatchUpWindow::parse)
            .transpose()
            .map_err(|e| bad("catchup_window_s", &e))?,
        overlap: match &r.overlap {
            Some(o) => Overlap::parse(o).map_err(|e| bad("overlap", &e))?,
            None => Overlap::Allow,
        },
        jitter: match r.jitter_s {
            Some(s) => Jitter::parse(s).map_err(|e| bad("jitter_s", &e))?,
            None => Jitter::default(),
        },
    })
}

/// A stored job's definition, checked again.
fn spec(r: &JobRecord) -> Result<JobSpec, RecordError> {
    let bad = |field: &str, e: &dyn Display| bad("job", &r.id, field, e);
    let kind: ScheduleType = r
        .schedule_type
        .parse()
        .map_err(|_| bad("schedule_type", &r.schedule_type))?;
    let tz = Timezone::parse(&r.timezone).map_err(|e| bad("timezone", &e))?;
    let (retry, success) = retry_and_success(r)?;
    let (alerts, notices) = alerts_and_notices(r)?;
    Ok(JobSpec {
        name: JobName::parse(&r.name).map_err(|e| bad("name", &e))?,
        schedule: Schedule::parse(kind, &r.schedule, tz)
            .map_err(|e| bad("schedule", &e))?
            .with_window(Window {
                starts_at: r.starts_at.map(from_unix),
                ends_at: r.ends_at.map(from_unix),
            }),
        request: WebhookSpec {
            url: TargetUrl::parse(&r.url).map_err(|e| bad("url", &e))?,
            method: HttpMethod::parse(&r.method).map_err(|e| bad("method", &e))?,
            headers: HeaderList::parse(r.headers.clone())
                .map_err(|e| bad("headers", &e.join(", ")))?,
            body: r
                .body
                .clone()
                .map(Body::parse)
                .transpose()
                .map_err(|e| bad("body", &e))?,
            timeout: TimeoutMs::parse(r.timeout_ms).map_err(|e| bad("timeout_ms", &e))?,
        },
        max_retries: MaxRetries::parse(r.max_retries).map_err(|e| bad("max_retries", &e))?,
        failure_notify: r.failure_notify,
        retry,
        success,
        tags: Tags::parse(r.tags.as_deref().unwrap_or_default())
            .map_err(|e| bad("tags", &e.join(", ")))?,
        alerts,
        notices,
        firing: firing(r)?,
    })
}

impl TryFrom<JobRecord> for Job {
    type Error = RecordError;

    fn try_from(r: JobRecord) -> Result<Job, RecordError> {
        let bad = |field: &str, e: &dyn Display| bad("job", &r.id, field, e);
        let paused_reason = r
            .paused_reason
            .as_deref()
            .map(PauseReason::parse)
            .transpose()
            .map_err(|e| bad("paused_reason", &e))?;
        Ok(Job {
            id: r.id.parse().map_err(|e| bad("id", &e))?,
            team: TeamId::from_stored(&r.team).map_err(|e| bad("team", &e))?,
            spec: spec(&r)?,
            enabled: r.enabled,
            generation: r.generation,
            version: r.version,
            next_run_at: r.next_run_at.map(from_unix),
            last_status: match &r.last_status {
                Some(s) => Some(RunStatus::parse(s).ok_or_else(|| bad("last_status", s))?),
                None => None,
            },
            last_run_at: r.last_run_at.map(from_unix),
            consecutive_failures: r.consecutive_failures,
            paused_reason,
            last_run_id: r
                .last_run_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| bad("last_run_id", &e))?,
            run_marker: RunMarker::from_stored(r.run_marker.as_deref())
                .map_err(|e| bad("run_marker", &e))?,
            created_at: from_unix(r.created_at),
            updated_at: from_unix(r.updated_at),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub team: String,
    pub job_id: String,
    pub run_id: String,
    pub trigger: String,
    pub scheduled_at: i64,
    pub attempt: u32,
    pub started_at: i64,
    /// `None` while the attempt is in flight; the outcome fields are set with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

/// The outcome columns of an execution record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub finished_at: i64,
}

impl From<&AttemptOutcome> for OutcomeRecord {
    fn from(o: &AttemptOutcome) -> Self {
        Self {
            status: o.status.as_str().to_owned(),
            http_status: o.http_status,
            response_body: o.response_body.clone(),
            error: o.error.clone(),
            duration_ms: o.duration_ms,
            finished_at: o.finished_at.timestamp(),
        }
    }
}

impl From<&Execution> for ExecutionRecord {
    fn from(e: &Execution) -> Self {
        let outcome = e.outcome.as_ref().map(OutcomeRecord::from);
        Self {
            id: e.id.to_string(),
            team: e.team.as_str().to_owned(),
            job_id: e.job_id.to_string(),
            run_id: e.run_id.to_string(),
            trigger: e.trigger.as_str().to_owned(),
            scheduled_at: e.scheduled_at.timestamp(),
            attempt: e.attempt,
            started_at: e.started_at.timestamp(),
            status: outcome.as_ref().map(|o| o.status.clone()),
            http_status: outcome.as_ref().and_then(|o| o.http_status),
            response_body: outcome.as_ref().and_then(|o| o.response_body.clone()),
            error: outcome.as_ref().and_then(|o| o.error.clone()),
            duration_ms: outcome.as_ref().map(|o| o.duration_ms),
            finished_at: outcome.as_ref().map(|o| o.finished_at),
        }
    }
}

impl TryFrom<ExecutionRecord> for Execution {
    type Error = RecordError;

    fn try_from(r: ExecutionRecord) -> Result<Execution, RecordError> {
        let bad = |field: &str, e: &dyn Display| bad("execution", &r.id, field, e);
        let outcome = match &r.status {
            None => None,
            Some(s) => Some(AttemptOutcome {
                status: RunStatus::parse(s).ok_or_else(|| bad("status", s))?,
                http_status: r.http_status,
                response_body: r.response_body.clone(),
                error: r.error.clone(),
                duration_ms: r.duration_ms.unwrap_or(0),
                finished_at: from_unix(r.finished_at.unwrap_or(0)),
            }),
        };
        Ok(Execution {
            id: r.id.parse().map_err(|e| bad("id", &e))?,
            team: TeamId::from_stored(&r.team).map_err(|e| bad("team", &e))?,
            job_id: r.job_id.parse().map_err(|e| bad("job_id", &e))?,
            run_id: r.run_id.parse().map_err(|e| bad("run_id", &e))?,
            trigger: Trigger::parse(&r.trigger).ok_or_else(|| bad("trigger", &r.trigger))?,
            scheduled_at: from_unix(r.scheduled_at),
            attempt: r.attempt,
            started_at: from_unix(r.started_at),
            outcome,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Hex SHA-256 of the key.
    pub hash: String,
    pub prefix: String,
    pub team: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

impl From<&ApiKey> for KeyRecord {
    fn from(k: &ApiKey) -> Self {
        Self {
            hash: k.hash.to_hex(),
            prefix: k.prefix.as_str().to_owned(),
            team: k.team.as_str().to_owned(),
            scopes: k.scopes.to_text(),
            created_at: k.created_at.timestamp(),
            expires_at: k.expires_at.map(|t| t.timestamp()),
            revoked_at: k.revoked_at.map(|t| t.timestamp()),
            last_used_at: k.last_used_at.map(|t| t.timestamp()),
        }
    }
}

impl TryFrom<KeyRecord> for ApiKey {
    type Error = RecordError;

    fn try_from(r: KeyRecord) -> Result<ApiKey, RecordError> {
        let bad = |field: &str, e: &dyn Display| bad("key", &r.prefix, field, e);
        Ok(ApiKey {
            hash: KeyHash::from_hex(&r.hash).ok_or_else(|| bad("hash", &"not hex"))?,
            prefix: KeyPrefix::parse(&r.prefix).ok_or_else(|| bad("prefix", &r.prefix))?,
            team: TeamId::from_stored(&r.team).map_err(|e| bad("team", &e))?,
            scopes: Scopes::from_text(&r.scopes).ok_or_else(|| bad("scopes", &r.scopes))?,
            created_at: from_unix(r.created_at),
            expires_at: r.expires_at.map(from_unix),
            revoked_at: r.revoked_at.map(from_unix),
            last_used_at: r.last_used_at.map(from_unix),
        })
    }
}

/// A team's signing secrets (stored in plain text: an HMAC needs the secret itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub team: String,
    pub secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<i64>,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<i64>,
}

impl From<&TeamSecrets> for TeamRecord {
    fn from(t: &TeamSecrets) -> Self {
        Self {
            team: t.team.as_str().to_owned(),
            secret: t.current.as_str().to_owned(),
            previous_secret: t.previous.as_ref().map(|(s, _)| s.as_str().to_owned()),
            previous_until: t.previous.as_ref().map(|(_, until)| until.timestamp()),
            created_at: t.created_at.timestamp(),
            rotated_at: t.rotated_at.map(|t| t.timestamp()),
        }
    }
}

impl TryFrom<TeamRecord> for TeamSecrets {
    type Error = RecordError;

    fn try_from(r: TeamRecord) -> Result<TeamSecrets, RecordError> {
        let bad = |field: &str, e: &dyn Display| bad("team", &r.team, field, e);
        let not_a_secret = "not a signing secret";
        let previous = match (&r.previous_secret, r.previous_until) {
            (Some(s), Some(until)) => Some((
                SigningSecret::parse(s).ok_or_else(|| bad("previous_secret", &not_a_secret))?,
                from_unix(until),
            )),
            _ => None,
        };
        Ok(TeamSecrets {
            team: TeamId::from_stored(&r.team).map_err(|e| bad("team", &e))?,
            current: SigningSecret::parse(&r.secret).ok_or_else(|| bad("secret", &not_a_secret))?,
            previous,
            created_at: from_unix(r.created_at),
            rotated_at: r.rotated_at.map(from_unix),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with every optional field set, so that serialising it names every field.
    pub(crate) fn full_job_record() -> JobRecord {
        JobRecord {
            id: "0190d3f0-0000-7000-8000-000000000000".into(),
            team: "alpha".into(),
            name: "n".into(),
            schedule_type: "interval".into(),
            schedule: "every_5m".into(),
            timezone: "UTC".into(),
            url: "https://example.com/".into(),
            method: "POST".into(),
            headers: vec![("X-A".into(), "1".into())],
            body: Some("b".into()),
            timeout_ms: 30_000,
            max_retries: 3,
            failure_notify: true,
            enabled: true,
            generation: 1,
            version: 2,
            next_run_at: Some(1),
            last_status: Some("success".into()),
            last_run_at: Some(1),
            created_at: 0,
            updated_at: 0,
            retry_backoff: Some("exponential".into()),
            retry_base_ms: Some(1000),
            retry_max_ms: Some(60_000),
            expect_status: Some(vec!["2xx".into(), "404".into()]),
            expect_body: Some("ok".into()),
            tags: Some(vec!["eu".into()]),
            notify_after_failures: Some(3),
            auto_disable_after_failures: Some(5),
            consecutive_failures: 2,
            paused_reason: Some("maintenance".into()),
            last_run_id: Some("0190d3f0-0000-7000-8000-000000000009".into()),
            notify_url: Some("https://hooks.example.com/x".into()),
            notify_format: Some("slack".into()),
            starts_at: Some(100),
            ends_at: Some(200),
            catchup_window_s: Some(300),
            overlap: Some("buffer_one".into()),
            jitter_s: Some(60),
            run_marker: Some(
                r#"{"running":{"run_id":"0190d3f0-0000-7000-8000-00000000000a","generation":1,"until":300}}"#
                    .into(),
            ),
        }
    }

    #[test]
    fn the_job_fields_are_the_records_fields() {
        let value = serde_json::to_value(full_job_record()).unwrap();
        let mut named: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut listed = JOB_FIELDS.to_vec();
        named.sort_unstable();
        listed.sort_unstable();
        assert_eq!(named, listed);
    }

    #[test]
    fn an_update_writes_definition_and_state_only() {
        let written: Vec<&str> = job_updated_fields().collect();
        for f in [
            "name",
            "schedule",
            "headers",
            "enabled",
            "generation",
            "version",
            "next_run_at",
            "updated_at",
        ] {
            assert!(written.contains(&f), "{f}");
        }
        for f in ["id", "team", "created_at", "last_status", "last_run_at"] {
            assert!(!written.contains(&f), "{f}");
        }
    }
}

/// An audit entry's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: String,
    pub team: String,
    pub at: i64,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    pub status: u16,
    pub request_id: String,
    pub source: String,
}

impl From<&AuditEntry> for AuditRecord {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            team: e.team.as_str().to_owned(),
            at: e.at.timestamp(),
            action: e.action.as_str().to_owned(),
            job_id: e.job_id.map(|j| j.to_string()),
            key_prefix: e.key_prefix.as_ref().map(|k| k.as_str().to_owned()),
            status: e.outcome.0,
            request_id: e.request_id.clone(),
            source: e.source.clone(),
        }
    }
}

impl TryFrom<AuditRecord> for AuditEntry {
    type Error = RecordError;

    fn try_from(r: AuditRecord) -> Result<Self, RecordError> {
        let bad = |field: &str, e: &dyn Display| bad("audit entry", &r.id, field, e);
        Ok(Self {
            id: r.id.parse().map_err(|e| bad("id", &e))?,
            team: TeamId::from_stored(&r.team).map_err(|e| bad("team", &e))?,
            at: from_unix(r.at),
            action: AuditAction::parse(&r.action).ok_or_else(|| bad("action", &r.action))?,
            job_id: r
                .job_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| bad("job_id", &e))?,
            key_prefix: match &r.key_prefix {
                Some(p) => Some(KeyPrefix::parse(p).ok_or_else(|| bad("key_prefix", p))?),
                None => None,
            },
            outcome: AuditOutcome(r.status),
            request_id: r.request_id.clone(),
            source: r.source.clone(),
        })
    }
}

/// An idempotency key's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRow {
    pub team: String,
    pub key: String,
    pub fingerprint: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The response, once the request is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl From<&IdempotencyRecord> for IdempotencyRow {
    fn from(r: &IdempotencyRecord) -> Self {
        Self {
            team: r.team.as_str().to_owned(),
            key: r.key.as_str().to_owned(),
            fingerprint: r.fingerprint.as_str().to_owned(),
            created_at: r.created_at.timestamp(),
            expires_at: r.expires_at.timestamp(),
            status: r.response.as_ref().map(|s| s.status),
            location: r.response.as_ref().and_then(|s| s.location.clone()),
            body: r.response.as_ref().map(|s| s.body.clone()),
        }
    }
}

impl TryFrom<IdempotencyRow> for IdempotencyRecord {
    type Error = RecordError;

    fn try_from(r: IdempotencyRow) -> Result<IdempotencyRecord, RecordError> {
        let bad = |field: &str, e: &dyn Display| bad("idempotency key", &r.key, field, e);
        Ok(IdempotencyRecord {
            team: TeamId::from_stored(&r.team).map_err(|e| bad("team", &e))?,
            key: IdempotencyKey::parse(&r.key).map_err(|e| bad("key", &e))?,
            fingerprint: RequestFingerprint::from_hex(&r.fingerprint),
            created_at: from_unix(r.created_at),
            expires_at: from_unix(r.expires_at),
            response: r.status.map(|status| StoredResponse {
                status,
                location: r.location.clone(),
                body: r.body.clone().unwrap_or_default(),
            }),
        })
    }
}
