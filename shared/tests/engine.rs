//! The executor engine on its own: duplicate deliveries, in-flight attempts, retries. The
//! stores are real (SQLite in memory); the clock is controlled; the webhook client counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use krafter_shared::adapters::sqlite::{
    SqliteDb, SqliteExecutionStore, SqliteJobStore, SqliteRunQueue, SqliteTeamStore,
};
use krafter_shared::domain::{
    AttemptOutcome, Job, RunId, RunMessage, RunStatus, TeamId, Trigger, parse_new_job,
};
use krafter_shared::executor::{
    Disposition, Executor, NoticeDelivery, RetryPolicy, WebhookNotifier,
};
use krafter_shared::ports::{
    AttemptStart, Clock, ExecutionStore, JobStore, PageRequest, WebhookCall, WebhookClient,
    WebhookResponse,
};
use krafter_testkit::TestClock;
use serde_json::json;

/// Answers every call with `status` and counts the calls.
struct CountingClient {
    calls: AtomicU32,
    status: u16,
    clock: Arc<TestClock>,
}

#[async_trait]
impl WebhookClient for CountingClient {
    async fn call(&self, _call: &WebhookCall) -> WebhookResponse {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let ok = (200..300).contains(&self.status);
        WebhookResponse {
            outcome: AttemptOutcome {
                status: if ok {
                    RunStatus::Success
                } else {
                    RunStatus::Failed
                },
                http_status: Some(self.status),
                response_body: Some(String::new()),
                error: (!ok).then(|| format!("HTTP {}", self.status)),
                duration_ms: 1,
                finished_at: self.clock.now(),
            },
            retry_after: None,
        }
    }
}

struct World {
    executor: Executor,
    client: Arc<CountingClient>,
    clock: Arc<TestClock>,
    jobs: Arc<SqliteJobStore>,
    executions: Arc<SqliteExecutionStore>,
    queue: SqliteRunQueue,
    job: Job,
}

async fn world(status: u16) -> World {
    let t0 = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap();
    let clock = Arc::new(TestClock::new(t0));
    let db = SqliteDb::open_in_memory().unwrap();
    let jobs = Arc::new(SqliteJobStore::new(db.clone()));
    let executions = Arc::new(SqliteExecutionStore::new(db.clone()));
    let teams = Arc::new(SqliteTeamStore::new(db.clone()));
    let queue = SqliteRunQueue::new(db);
    let body = json!({"name": "hook", "schedule_type": "interval", "schedule": "every_5m",
        "url": "https://example.com/hook", "max_retries": 2});
    let draft = krafter_shared::api::read_job_draft(body.as_object().unwrap()).unwrap();
    let (spec, _) = parse_new_job(&draft, t0).unwrap();
    let job = Job::new(TeamId::parse("alpha").unwrap(), spec, true, t0);
    jobs.insert(&job, 10).await.unwrap();
    let client = Arc::new(CountingClient {
        calls: AtomicU32::new(0),
        status,
        clock: clock.clone(),
    });
    let executor = Executor {
        jobs: jobs.clone(),
        executions: executions.clone(),
        queue: Arc::new(queue.clone()),
        client: client.clone(),
        teams,
        // No notice URL: notices are only logged.
        notifier: Arc::new(
            WebhookNotifier::new(
                None,
                krafter_shared::targets::TargetGuard::new(
                    krafter_shared::targets::TargetPolicy::AllowPrivate,
                    Arc::new(krafter_shared::adapters::dns::SystemResolver),
                ),
                clock.clone(),
            )
            .unwrap(),
        ),
        clock: clock.clone(),
        retry: RetryPolicy {
            base: Duration::from_secs(15),
            ..RetryPolicy::default()
        },
        notices: NoticeDelivery::Background,
        schedules: Arc::new(krafter_shared::embedded::TimerScheduleSync::new(Arc::new(
            tokio::sync::Notify::new(),
        ))),
    };
    World {
        executor,
        client,
        clock,
        jobs,
        executions,
        queue,
        job,
    }
}

impl World {
    fn message(&self, attempt: u32) -> RunMessage {
        let at = Utc.with_ymd_and_hms(2025, 1, 15, 10, 5, 0).unwrap();
        RunMessage {
            team: self.job.team.clone(),
            job_id: self.job.id,
            run_id: RunId::scheduled(self.job.id, at),
            trigger: Trigger::Schedule,
            scheduled_at: at,
            attempt,
            generation: 0,
        }
    }
    fn calls(&self) -> u32 {
        self.client.calls.load(Ordering::SeqCst)
    }
    async fn records(&self) -> Vec<krafter_shared::domain::Execution> {
        self.executions
            .list(
                &self.job.team,
                self.job.id,
                PageRequest::all(),
                &Default::default(),
            )
            .await
            .unwrap()
            .items
    }
    async fn queued(&self, at: DateTime<Utc>) -> Vec<RunMessage> {
        self.queue
            .dequeue(at, 100, Duration::from_secs(60))
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.message)
            .collect()
    }
}

#[tokio::test]
async fn a_message_delivered_twice_sends_its_attempt_once() {
    let w = world(200).await;
    let m = w.message(1);
    assert_eq!(
        w.executor.process(std::slice::from_ref(&m)).await.unwrap(),
        [Disposition::Done]
    );
    assert_eq!(
        w.executor.process(std::slice::from_ref(&m)).await.unwrap(),
        [Disposition::Done]
    );
    assert_eq!(
        w.executor.process(&[m.clone(), m]).await.unwrap(),
        [Disposition::Done, Disposition::Done]
    );
    assert_eq!(w.calls(), 1);
    assert_eq!(w.records().await.len(), 1);
    let job = w.jobs.get(&w.job.team, w.job.id).await.unwrap().unwrap();
    assert_eq!(job.last_status, Some(RunStatus::Success));
}

#[tokio::test]
async fn a_failed_attempt_enqueues_the_next_after_the_backoff_once_even_when_redelivered() {
    let w = world(500).await;
    let m = w.message(1);
    w.executor.process(std::slice::from_ref(&m)).await.unwrap();
    w.executor.process(&[m]).await.unwrap();
    assert_eq!(w.calls(), 1);
    let now = w.clock.now();
    assert!(
        w.queued(now + chrono::Duration::seconds(14))
            .await
            .is_empty()
    );
    let retries = w.queued(now + chrono::Duration::seconds(15)).await;
    assert!(!retries.is_empty() && retries.iter().all(|r| *r == w.message(2)));
    // However many copies of the retry are queued, attempt 2 is sent once.
    w.executor.process(&retries).await.unwrap();
    assert_eq!(w.calls(), 2);
}

#[tokio::test]
async fn a_duplicate_of_an_attempt_in_flight_waits_and_sends_nothing() {
    let w = world(200).await;
    let m = w.message(1);
    w.executions
        .begin_attempts(&[AttemptStart::new(m.clone(), w.clock.now())])
        .await
        .unwrap();
    let d = w.executor.process(&[m]).await.unwrap();
    let [Disposition::Later(wait)] = d.as_slice() else {
        panic!("{d:?}")
    };
    assert!(
        *wait >= Duration::from_secs(30),
        "at least the job's timeout: {wait:?}"
    );
    assert_eq!(w.calls(), 0);
}

#[tokio::test]
async fn an_attempt_stuck_in_flight_past_its_timeout_is_recorded_interrupted_and_retried() {
    let w = world(200).await;
    let m = w.message(1);
    let stuck = AttemptStart::new(m.clone(), w.clock.now());
    w.executions
        .begin_attempts(std::slice::from_ref(&stuck))
        .await
        .unwrap();
    w.clock.advance(chrono::Duration::minutes(5));
    assert_eq!(w.executor.process(&[m]).await.unwrap(), [Disposition::Done]);
    assert_eq!(w.calls(), 0, "the attempt is never sent again");
    let records = w.records().await;
    assert_eq!(records.len(), 1);
    let o = records[0].outcome.as_ref().unwrap();
    assert_eq!(o.status, RunStatus::Failed);
    assert!(o.error.as_deref().unwrap().starts_with("interrupted"));
    let retry = w
        .queued(w.clock.now() + chrono::Duration::seconds(15))
        .await;
    assert_eq!(
        retry,
        [w.message(2)],
        "the run goes on with its next attempt"
    );
}

#[tokio::test]
async fn a_run_of_a_paused_job_is_dropped_without_a_call() {
    let w = world(200).await;
    let mut paused = w.jobs.get(&w.job.team, w.job.id).await.unwrap().unwrap();
    paused.enabled = false;
    paused.generation += 1;
    paused.version += 1;
    w.jobs.update(&paused, 1).await.unwrap();
    assert_eq!(
        w.executor.process(&[w.message(1)]).await.unwrap(),
        [Disposition::Done]
    );
    assert_eq!(w.calls(), 0);
    assert!(w.records().await.is_empty());
}

#[tokio::test]
async fn a_success_after_a_success_writes_nothing_on_the_job_and_still_reads_as_its_last_run() {
    let w = world(200).await;
    w.executor.process(&[w.message(1)]).await.unwrap();
    let after_first = w.jobs.get(&w.job.team, w.job.id).await.unwrap().unwrap();
    let first_at = w.message(1).scheduled_at;
    assert_eq!(after_first.last_run_at, Some(first_at));

    let at = first_at + chrono::Duration::minutes(5);
    let next = RunMessage {
        run_id: RunId::scheduled(w.job.id, at),
        scheduled_at: at,
        ..w.message(1)
    };
    w.executor.process(&[next]).await.unwrap();
    assert_eq!(w.calls(), 2);
    let stored = w.jobs.get(&w.job.team, w.job.id).await.unwrap().unwrap();
    assert_eq!(stored, after_first, "the job is not written");
    assert_eq!(stored.ran(&w.records().await).last_run_at, Some(at));
}
