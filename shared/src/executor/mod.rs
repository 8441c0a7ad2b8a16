//! The executor engine: takes run messages from any queue, records each attempt before
//! sending it (so a duplicate delivery never sends twice), calls the webhook, records the
//! outcome, schedules retries through the queue, keeps the job's status and sends notices.
//!
//! The three steps are separate so that drivers can pipeline them: the embedded worker
//! begins batches, runs calls concurrently and finishes them in batches; the hosted
//! executor function does all three for one SQS batch.

mod http;
mod notify;
mod overlap;

use overlap::MarkerEvent;
mod retry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

pub use http::{ReqwestWebhookClient, WebhookClientConfig};
pub use notify::{WebhookNotifier, render as render_notice};
pub use retry::RetryPolicy;

use crate::domain::{
    AlertPolicy, Alerts, AttemptOutcome, Execution, ExecutionId, Job, JobId, PauseReason,
    RunMessage, RunStatus, StreakChange, TeamId, TeamSecrets, time::whole_seconds,
};
use crate::ports::{
    AttemptStart, BeginOutcome, Clock, ExecutionStore, JobStore, Notice, NoticeEvent, NoticeRoute,
    Notifier, RecordedRun, RunQueue, RunResult, ScheduleSync, StoreResult, TeamStore, WebhookCall,
    WebhookClient, WebhookResponse,
};
use crate::service::teams::ensure_team;
use crate::service::{JobPorts, modify_job};

/// What to do with a queue message once the engine is done with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Handled (sent, dropped, or already handled before): delete it from the queue.
    Done,
    /// Not handled yet (another delivery is still in flight): deliver it again later.
    Later(Duration),
}

/// An attempt recorded as in flight, ready to be sent.
#[derive(Clone, Debug)]
pub struct Started {
    pub message: RunMessage,
    pub execution_id: ExecutionId,
    pub job: Arc<Job>,
    pub started_at: DateTime<Utc>,
}

impl Started {
    /// The start this attempt was recorded with.
    pub fn attempt_start(&self) -> AttemptStart {
        AttemptStart::new(self.message.clone(), whole_seconds(self.started_at))
    }
}

/// A run due now, with its job when the driver has just read it (strongly consistent).
#[derive(Clone, Debug)]
pub struct Due {
    pub message: RunMessage,
    pub job: Option<Arc<Job>>,
}

impl Due {
    pub fn of(message: RunMessage) -> Self {
        Self { message, job: None }
    }
}

pub enum Step {
    Send(Started),
    Settled(Disposition),
}

/// How failure and recovery notices are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeDelivery {
    /// On a background task, so that they never hold up recording other attempts: for a
    /// long-running process (the embedded server).
    Background,
    /// Before `finish` returns: for a function that may be frozen as soon as it returns
    /// (Lambda), where a background task would never run.
    Awaited,
}

#[derive(Clone)]
pub struct Executor {
    pub jobs: Arc<dyn JobStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub queue: Arc<dyn RunQueue>,
    pub client: Arc<dyn WebhookClient>,
    /// Teams' signing secrets (behind a short cache).
    pub teams: Arc<dyn TeamStore>,
    pub notifier: Arc<dyn Notifier>,
    /// Synced when a job disables itself (its failure streak reached its limit).
    pub schedules: Arc<dyn ScheduleSync>,
    pub clock: Arc<dyn Clock>,
    pub retry: RetryPolicy,
    pub notices: NoticeDelivery,
}

/// How long the executor's cache keeps a team's signing secrets (both backends): a rotation
/// made by another process is used within this time.
pub const SIGNING_SECRET_CACHE: Duration = Duration::from_secs(60);

/// How long past its timeout an attempt may stay "in flight" before a redelivered message
/// treats it as interrupted.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(60);

impl Executor {
    /// Step 1: record the attempts as in flight (conditionally: once per run and attempt).
    pub async fn begin(&self, messages: &[RunMessage]) -> StoreResult<Vec<Step>> {
        let runs: Vec<Due> = messages.iter().map(|m| Due::of(m.clone())).collect();
        self.begin_due(&runs).await
    }

    /// Step 1 for runs whose jobs the driver may have just read.
    pub async fn begin_due(&self, runs: &[Due]) -> StoreResult<Vec<Step>> {
        let now = self.clock.now();
        let starts: Vec<AttemptStart> = runs
            .iter()
            .map(|r| {
                AttemptStart::new(r.message.clone(), whole_seconds(now))
                    .with_job_read(r.job.clone())
            })
            .collect();
        let outcomes = self.executions.begin_attempts(&starts).await?;
        let mut steps = Vec::with_capacity(starts.len());
        for (start, outcome) in starts.into_iter().zip(outcomes) {
            let m = &start.message;
            steps.push(match outcome {
                BeginOutcome::Started(job) => {
                    crate::metrics::attempt_started(&job, &start.message, now);
                    Step::Send(Started {
                        execution_id: start.execution_id(),
                        job: Arc::from(job),
                        started_at: now,
                        message: start.message,
                    })
                }
                BeginOutcome::JobGone => {
                    info!(job_id = %m.job_id, run_id = %m.run_id, attempt = m.attempt,
                        "run dropped: its job was paused or deleted");
                    Step::Settled(Disposition::Done)
                }
                BeginOutcome::AlreadyRecorded(existing) => {
                    Step::Settled(self.settle_recorded(m, *existing, now).await?)
                }
                BeginOutcome::Skipped(_) => {
                    crate::metrics::attempt_skipped();
                    info!(job_id = %m.job_id, run_id = %m.run_id,
                        "run skipped: an earlier run of the job is unfinished (overlap policy)");
                    Step::Settled(Disposition::Done)
                }
                BeginOutcome::Buffered => {
                    info!(job_id = %m.job_id, run_id = %m.run_id,
                        "run waits for the unfinished one (overlap policy buffer_one)");
                    Step::Settled(Disposition::Done)
                }
                BeginOutcome::Wait(wait) => Step::Settled(Disposition::Later(wait)),
            });
        }
        Ok(steps)
    }

    /// Step 2: make the webhook call, signed with the team's secrets. A request is never
    /// sent unsigned: if the secrets cannot be read, the attempt fails (and is retried).
    pub async fn perform(&self, s: &Started) -> WebhookResponse {
        let secrets = self.secrets(&s.job.team).await;
        self.send(s, secrets.as_ref()).await
    }

    /// The team's signing secrets (created for a team that has none); `None`, logged, when
    /// they cannot be read.
    async fn secrets(&self, team: &TeamId) -> Option<TeamSecrets> {
        match ensure_team(self.teams.as_ref(), team, self.clock.now()).await {
            Ok(team) => Some(team.secrets),
            Err(e) => {
                warn!(team = %team, error = %e, "could not read the team's signing secret");
                None
            }
        }
    }

    /// The webhook call, signed with `secrets`; failed before sending without them.
    async fn send(&self, s: &Started, secrets: Option<&TeamSecrets>) -> WebhookResponse {
        let Some(secrets) = secrets else {
            warn!(job_id = %s.job.id, execution_id = %s.execution_id,
                "not sent: the team's signing secret could not be read");
            return WebhookResponse::failed_before_sending(
                "could not read the team's signing secret".to_owned(),
                self.clock.now(),
            );
        };
        self.client
            .call(&WebhookCall {
                job: s.job.clone(),
                execution_id: s.execution_id,
                run_id: s.message.run_id,
                attempt: s.message.attempt,
                secrets: secrets.clone(),
            })
            .await
    }

    /// Step 3: record outcomes, enqueue retries, record run results, send notices.
    pub async fn finish(&self, done: &[(Started, WebhookResponse)]) -> StoreResult<()> {
        let records: Vec<_> = done
            .iter()
            .map(|(s, r)| (s.attempt_start(), r.outcome.clone()))
            .collect();
        self.executions.finish_attempts(&records).await?;
        for (s, r) in done {
            let o = &r.outcome;
            crate::metrics::attempt_ended(o);
            info!(job_id = %s.job.id, execution_id = %s.execution_id, run_id = %s.message.run_id,
                attempt = s.message.attempt, status = o.status.as_str(), http_status = o.http_status,
                duration_ms = o.duration_ms, error = o.error.as_deref(), "attempt finished");
        }
        let ended: Vec<_> = done
            .iter()
            .map(|(s, r)| EndedAttempt {
                job: s.job.clone(),
                message: s.message.clone(),
                outcome: r.outcome.clone(),
                retry_after: r.retry_after,
            })
            .collect();
        self.follow_up(&ended, Notices::Send).await
    }

    /// All three steps for one batch, calls made concurrently. For drivers that handle a
    /// batch at a time (the hosted executor function, tests).
    pub async fn process(&self, messages: &[RunMessage]) -> StoreResult<Vec<Disposition>> {
        let runs: Vec<Due> = messages.iter().map(|m| Due::of(m.clone())).collect();
        self.process_due(&runs).await
    }

    /// `process` for runs whose jobs the driver may have just read (the hosted tick's).
    pub async fn process_due(&self, runs: &[Due]) -> StoreResult<Vec<Disposition>> {
        let steps = self.begin_due(runs).await?;
        let mut dispositions = Vec::with_capacity(steps.len());
        let mut sends = Vec::new();
        for step in steps {
            match step {
                Step::Send(s) => {
                    dispositions.push(Disposition::Done);
                    sends.push(s);
                }
                Step::Settled(d) => dispositions.push(d),
            }
        }
        // Each team's secrets read once for the batch (not once per call, all missing the
        // cache together).
        let mut secrets: HashMap<TeamId, Option<TeamSecrets>> = HashMap::new();
        for s in &sends {
            if !secrets.contains_key(&s.job.team) {
                let found = self.secrets(&s.job.team).await;
                secrets.insert(s.job.team.clone(), found);
            }
        }
        let responses = futures_util::future::join_all(
            sends
                .iter()
                .map(|s| self.send(s, secrets[&s.job.team].as_ref())),
        )
        .await;
        let done: Vec<_> = sends.into_iter().zip(responses).collect();
        self.finish(&done).await?;
        Ok(dispositions)
    }

    /// A message whose attempt was recorded before: a duplicate delivery, or a redelivery
    /// after a crash. Never sends again; makes sure what should follow the attempt happened.
    async fn settle_recorded(
        &self,
        m: &RunMessage,
        existing: Execution,
        now: DateTime<Utc>,
    ) -> StoreResult<Disposition> {
        let Some(job) = self.jobs.get(&m.team, m.job_id).await? else {
            return Ok(Disposition::Done);
        };
        let outcome = match existing.outcome {
            // A skipped run ended when it was recorded: nothing follows it.
            Some(o) if o.status == RunStatus::Skipped => return Ok(Disposition::Done),
            Some(o) => o,
            None => {
                let deadline = existing.started_at
                    + Duration::from_millis(u64::from(job.spec.request.timeout.get()))
                    + IN_FLIGHT_GRACE;
                if now < deadline {
                    let wait = (deadline - now).to_std().unwrap_or_default();
                    return Ok(Disposition::Later(wait));
                }
                let o = AttemptOutcome::interrupted(existing.started_at, now);
                let start = AttemptStart::recorded(&existing, m.clone());
                self.executions
                    .finish_attempts(&[(start, o.clone())])
                    .await?;
                warn!(job_id = %m.job_id, execution_id = %existing.id, attempt = m.attempt,
                    "attempt recorded as interrupted");
                o
            }
        };
        info!(job_id = %m.job_id, run_id = %m.run_id, attempt = m.attempt,
            "duplicate delivery: the attempt was recorded before and is not sent again");
        let ended = EndedAttempt {
            job: Arc::new(job),
            message: m.clone(),
            outcome,
            retry_after: None,
        };
        self.follow_up(&[ended], Notices::Skip).await?;
        Ok(Disposition::Done)
    }

    /// What follows ended attempts: retries for those the policy retries, and for the others
    /// the end of their run, recorded on the job, with its notice.
    async fn follow_up(&self, ended: &[EndedAttempt], notices: Notices) -> StoreResult<()> {
        let now = self.clock.now();
        let mut retries = Vec::new();
        let mut run_ends = Vec::new();
        let mut markers = Vec::new();
        for e in ended {
            let spec = &e.job.spec;
            match self.retry.next_delay(
                &e.outcome,
                e.message.attempt,
                &spec.retry,
                spec.max_retries.get(),
                e.retry_after,
            ) {
                Some(delay) => {
                    let next = e.message.retry();
                    info!(job_id = %e.job.id, run_id = %next.run_id, attempt = next.attempt,
                        delay_ms = delay.as_millis() as u64, "retry scheduled");
                    let at = now + delay;
                    if spec.firing.guards_overlap() {
                        markers.push((&*e.job, MarkerEvent::RetryPending(next.run_id, at)));
                    }
                    retries.push((next, at));
                }
                None => run_ends.push(e),
            }
        }
        if !markers.is_empty() {
            self.change_markers(&markers).await?;
        }
        if !retries.is_empty() {
            self.queue.enqueue(&retries).await?;
        }
        if run_ends.is_empty() {
            return Ok(());
        }
        let recorded = self.record_run_ends(&run_ends).await?;
        let released: Vec<_> = run_ends
            .iter()
            .filter(|e| e.job.spec.firing.guards_overlap())
            .map(|e| (&*e.job, MarkerEvent::Ended(e.message.run_id)))
            .collect();
        if !released.is_empty() {
            self.change_markers(&released).await?;
        }
        let mut outgoing = Vec::new();
        for (e, r) in run_ends.into_iter().zip(recorded) {
            let alerts = e.alerts(r);
            let mut these = Vec::new();
            if alerts.disable
                && let Some(notice) = self.auto_disable(e).await
            {
                these.push(notice);
            }
            these.extend(e.notices(alerts));
            if !these.is_empty() {
                let route = self.route(&e.job).await;
                outgoing.extend(these.into_iter().map(|n| (n, route.clone())));
            }
        }
        if notices == Notices::Send {
            self.send_notices(outgoing).await;
        }
        Ok(())
    }

    /// Records the ends of runs on their jobs, where they change the job (`run_end_changes`):
    /// a success after a success is not written, and reads as recorded (its previous status
    /// and streak the job's as read). A job with several run ends in one batch has them all
    /// written, in order, so that none is judged on a status the batch changes.
    async fn record_run_ends(&self, run_ends: &[&EndedAttempt]) -> StoreResult<Vec<RecordedRun>> {
        let mut ends_of_job: HashMap<JobId, usize> = HashMap::new();
        for e in run_ends {
            *ends_of_job.entry(e.job.id).or_default() += 1;
        }
        let written = |e: &EndedAttempt| {
            ends_of_job[&e.job.id] > 1 || e.job.run_end_changes(e.outcome.status)
        };
        let results: Vec<RunResult> = run_ends
            .iter()
            .filter(|e| written(e))
            .map(|e| e.run_result())
            .collect();
        let mut recorded = self.jobs.record_run_results(&results).await?.into_iter();
        Ok(run_ends
            .iter()
            .map(|e| match written(e) {
                true => recorded.next().unwrap_or(RecordedRun::Ignored),
                false => RecordedRun::Applied {
                    previous: e.job.last_status,
                    previous_failures: e.job.consecutive_failures,
                },
            })
            .collect())
    }

    /// Where a job's notices go, with its team's secrets to sign them.
    async fn route(&self, job: &Job) -> NoticeRoute {
        let secrets = match ensure_team(self.teams.as_ref(), &job.team, self.clock.now()).await {
            Ok(team) => Some(team.secrets),
            Err(e) => {
                warn!(job_id = %job.id, error = %e, "could not read the team's signing secret: the notice goes unsigned");
                None
            }
        };
        NoticeRoute {
            url: job.spec.notices.url.clone(),
            format: job.spec.notices.format,
            secrets,
        }
    }

    /// The job's failure streak reached `auto_disable_after_failures`: it pauses itself,
    /// with the reason, like a pause through the API (its schedule is disabled). Returns
    /// the notice of it, if it was enabled.
    async fn auto_disable(&self, e: &EndedAttempt) -> Option<Notice> {
        let after = e.job.spec.alerts.disable_after?;
        let ports = JobPorts {
            jobs: self.jobs.as_ref(),
            schedules: self.schedules.as_ref(),
            clock: self.clock.as_ref(),
        };
        let reason = PauseReason::auto_disabled(after);
        let paused = modify_job(ports, &e.job.team, e.job.id, |job, _| {
            if job.enabled {
                job.pause(Some(reason.clone()));
            }
            Ok(())
        })
        .await;
        match paused {
            Ok(job) if job.paused_reason.as_ref() == Some(&reason) => {
                warn!(job_id = %job.id, failures = after.get(), "job auto-disabled");
                e.notice(NoticeEvent::JobDisabled)
            }
            Ok(_) => None,
            Err(err) => {
                warn!(job_id = %e.job.id, error = %err, "could not auto-disable the job");
                None
            }
        }
    }

    async fn send_notices(&self, notices: Vec<(Notice, NoticeRoute)>) {
        if notices.is_empty() {
            return;
        }
        let notifier = self.notifier.clone();
        let send = async move {
            for (notice, route) in &notices {
                notifier.notify(notice, route).await;
            }
        };
        match self.notices {
            NoticeDelivery::Background => drop(tokio::spawn(send)),
            NoticeDelivery::Awaited => send.await,
        }
    }
}

/// Whether the ends of runs send notices: not when a recorded attempt is replayed, so
/// that a duplicate delivery does not send a second one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Notices {
    Send,
    Skip,
}

/// An attempt that has ended (just now, or found recorded by a duplicate delivery).
struct EndedAttempt {
    job: Arc<Job>,
    message: RunMessage,
    outcome: AttemptOutcome,
    /// The target's `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl EndedAttempt {
    fn run_result(&self) -> RunResult {
        RunResult {
            team: self.job.team.clone(),
            job_id: self.job.id,
            run_id: self.message.run_id,
            scheduled_at: self.message.scheduled_at,
            status: self.outcome.status,
            streak: StreakChange::of(self.outcome.status),
        }
    }

    /// What this run's end calls for under the job's alert policy. A run whose end was not
    /// recorded (the job is gone, a later run ended first, or a duplicate delivery) sets off
    /// nothing but, under the default policy, its failure notice, as before policies.
    fn alerts(&self, recorded: RecordedRun) -> Alerts {
        let policy = &self.job.spec.alerts;
        match recorded {
            RecordedRun::Applied {
                previous,
                previous_failures,
            } => {
                // Records from before streaks were kept know only their last status.
                let streak = previous_failures.max(u32::from(previous == Some(RunStatus::Failed)));
                policy.on_run_end(streak, self.outcome.status)
            }
            RecordedRun::Ignored => Alerts {
                failure_notice: self.outcome.status == RunStatus::Failed
                    && *policy == AlertPolicy::default(),
                ..Alerts::default()
            },
        }
    }

    /// The failure and recovery notices `alerts` calls for.
    fn notices(&self, alerts: Alerts) -> Vec<Notice> {
        let mut out = Vec::new();
        if alerts.failure_notice {
            let (m, o) = (&self.message, &self.outcome);
            warn!(job_id = %self.job.id, run_id = %m.run_id, attempts = m.attempt,
                error = o.error.as_deref(), "run failed after its last attempt");
            out.extend(self.notice(NoticeEvent::JobFailed));
        }
        if alerts.recovery_notice {
            out.extend(self.notice(NoticeEvent::JobRecovered));
        }
        out
    }

    /// A notice of `event` about this run, for a job with `failure_notify`.
    fn notice(&self, event: NoticeEvent) -> Option<Notice> {
        let (job, m, o) = (&self.job, &self.message, &self.outcome);
        job.spec.failure_notify.then(|| Notice {
            event,
            team: job.team.clone(),
            job_id: job.id,
            job_name: job.spec.name.as_str().to_owned(),
            run_id: m.run_id,
            scheduled_at: m.scheduled_at,
            attempts: m.attempt,
            http_status: o.http_status,
            error: o.error.clone(),
            at: o.finished_at,
        })
    }
}
