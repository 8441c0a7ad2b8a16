//! Valid data, built through the real domain parsers, at fixed times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use krafter_shared::domain::{
    ApiKey, AttemptOutcome, Execution, Job, JobId, KeyPrefix, PlainKey, RunId, RunMessage,
    RunStatus, Scope, Scopes, TeamId, Trigger, parse_new_job,
};
use krafter_shared::ports::{AttemptStart, BeginOutcome, ExecutionStore};
use serde_json::{Value, json};

/// A job quota no fixture reaches (the quota tests set their own).
pub const QUOTA: u64 = 1_000_000;

/// 2025-01-15T10:00:00Z: "now" when the fixtures are made.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()
}

/// `t0` plus some minutes.
pub fn mins(m: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(m)
}

/// `t0` plus some seconds.
pub fn secs(s: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(s)
}

pub fn team_a() -> TeamId {
    TeamId::parse("team-a").unwrap()
}

pub fn team_b() -> TeamId {
    TeamId::parse("team-b").unwrap()
}

/// A job draft as the API reads it from `body`.
pub fn draft(body: Value) -> krafter_shared::domain::JobDraft {
    krafter_shared::api::read_job_draft(body.as_object().expect("a JSON object"))
        .expect("a fixture draft has the right JSON types")
}

/// A new job as the API creates it from `body` at `now`.
pub fn job(team: &TeamId, body: Value, now: DateTime<Utc>) -> Job {
    let (spec, enabled) =
        parse_new_job(&draft(body), now).unwrap_or_else(|e| panic!("invalid fixture job: {e:?}"));
    Job::new(team.clone(), spec, enabled, now)
}

/// The quickstart job: every 5 minutes, created at `t0` (first run at `t0 + 5 min`).
pub fn interval_job(team: &TeamId) -> Job {
    named_job(team, "Health Check", t0())
}

pub fn named_job(team: &TeamId, name: &str, now: DateTime<Utc>) -> Job {
    job(
        team,
        json!({
            "name": name,
            "schedule_type": "interval",
            "schedule": "every_5m",
            "url": "https://example.com/api/health",
            "method": "GET"
        }),
        now,
    )
}

pub fn ids(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

/// Attempt `attempt` of the job's scheduled run at `at`.
pub fn scheduled_run(job: &Job, at: DateTime<Utc>, attempt: u32) -> RunMessage {
    RunMessage {
        team: job.team.clone(),
        job_id: job.id,
        run_id: RunId::scheduled(job.id, at),
        trigger: Trigger::Schedule,
        scheduled_at: at,
        attempt,
        generation: job.generation,
    }
}

/// A manual run ("trigger now") of the job at `at`.
pub fn manual_run(job: &Job, at: DateTime<Utc>) -> RunMessage {
    RunMessage {
        run_id: RunId::new(),
        trigger: Trigger::Manual,
        ..scheduled_run(job, at, 1)
    }
}

pub fn start(message: RunMessage, started_at: DateTime<Utc>) -> AttemptStart {
    AttemptStart::new(message, started_at)
}

/// The record an attempt start should leave.
pub fn in_flight(start: &AttemptStart) -> Execution {
    let m = &start.message;
    Execution {
        id: start.execution_id(),
        team: m.team.clone(),
        job_id: m.job_id,
        run_id: m.run_id,
        trigger: m.trigger,
        scheduled_at: m.scheduled_at,
        attempt: m.attempt,
        started_at: start.started_at,
        outcome: None,
    }
}

pub fn success(finished_at: DateTime<Utc>) -> AttemptOutcome {
    AttemptOutcome {
        status: RunStatus::Success,
        http_status: Some(200),
        response_body: Some("{\"ok\":true}\nünïcode".to_owned()),
        error: None,
        duration_ms: 1234,
        finished_at,
    }
}

pub fn failure(finished_at: DateTime<Utc>) -> AttemptOutcome {
    AttemptOutcome {
        status: RunStatus::Failed,
        http_status: None,
        response_body: None,
        error: Some("connection refused".to_owned()),
        duration_ms: 0,
        finished_at,
    }
}

pub fn expect_started(o: &BeginOutcome) -> &Job {
    match o {
        BeginOutcome::Started(job) => job,
        other => panic!("expected Started, got {other:?}"),
    }
}

pub fn expect_already_recorded(o: &BeginOutcome) -> &Execution {
    match o {
        BeginOutcome::AlreadyRecorded(e) => e,
        other => panic!("expected AlreadyRecorded, got {other:?}"),
    }
}

pub fn expect_job_gone(o: &BeginOutcome) {
    assert!(
        matches!(o, BeginOutcome::JobGone),
        "expected JobGone, got {o:?}"
    );
}

/// A key whose secret is `kr_live_` + `tag` (4 characters: the rest of its prefix) + filler
/// `fill`, so that tests choose which keys share a prefix.
pub fn key(team: &TeamId, tag: &str, fill: char, created_at: DateTime<Utc>) -> (PlainKey, ApiKey) {
    assert_eq!(tag.len(), 4);
    let plain = PlainKey::parse(&format!("kr_live_{tag}{}", fill.to_string().repeat(39)))
        .expect("a well-formed fixture key");
    let key = ApiKey {
        prefix: plain.prefix(),
        hash: plain.hash(),
        team: team.clone(),
        scopes: Scopes::new(vec![Scope::Write]),
        created_at,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    };
    (plain, key)
}

pub fn prefix(s: &str) -> KeyPrefix {
    KeyPrefix::parse(s).expect("a well-formed prefix")
}

/// The stored record of an attempt of `job`, if any.
pub async fn record(
    executions: &dyn ExecutionStore,
    job: &Job,
    id: krafter_shared::domain::ExecutionId,
) -> Option<Execution> {
    executions.get(&job.team, job.id, id).await.unwrap()
}
