//! The hosted executor's queue handling, for any run queue that carries text messages (SQS):
//! turns schedule ticks into runs, holds back runs that arrived early, and drives the
//! executor engine over a batch. It reports which deliveries failed, for SQS's partial batch
//! response: those are delivered again, and after too many tries land in the dead-letter
//! queue. Nothing here sleeps: waits go back to the queue with a delay.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use crate::domain::time::whole_seconds;
use crate::domain::{Job, JobId, QueuedMessage, RunId, RunMessage, TeamId, Trigger};
use crate::executor::{Disposition, Executor};
use crate::ports::{Clock, JobStore, RunQueue, ScheduleSync, StoreResult, UpdateOutcome};
use crate::schedule::ScheduleType;

/// One message as the queue delivered it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The queue's id for this delivery (SQS `messageId`), named in a failure report.
    pub id: String,
    pub body: String,
}

/// A run delivered this early or more is sent back to wait.
const EARLY_TOLERANCE: chrono::Duration = chrono::Duration::seconds(1);

#[derive(Clone)]
pub struct RunHandler {
    pub executor: Executor,
    pub jobs: Arc<dyn JobStore>,
    pub queue: Arc<dyn RunQueue>,
    pub schedules: Arc<dyn ScheduleSync>,
    pub clock: Arc<dyn Clock>,
}

impl RunHandler {
    /// Handles a batch. Returns the ids of the deliveries that failed and must come again.
    pub async fn handle(&self, deliveries: &[Delivery]) -> Vec<String> {
        let now = self.clock.now();
        let mut failed = Vec::new();
        // Runs to execute now, each with the delivery it came from.
        let mut due: Vec<(String, RunMessage)> = Vec::new();
        let mut later: Vec<(RunMessage, DateTime<Utc>)> = Vec::new();
        for d in deliveries {
            match serde_json::from_str::<QueuedMessage>(&d.body) {
                Err(e) => {
                    error!(message_id = %d.id, error = %e,
                        "an unreadable message: failed, so that it ends in the dead-letter queue");
                    failed.push(d.id.clone());
                }
                Ok(QueuedMessage::Run { run, deliver_at }) => {
                    if deliver_at - now > EARLY_TOLERANCE {
                        later.push((run, deliver_at));
                    } else {
                        due.push((d.id.clone(), run));
                    }
                }
                Ok(QueuedMessage::Tick {
                    team,
                    job_id,
                    scheduled_at,
                }) => match self.tick(&team, job_id, scheduled_at).await {
                    Ok(runs) => {
                        for (run, at) in runs {
                            if at - now > EARLY_TOLERANCE {
                                later.push((run, at));
                            } else {
                                due.push((d.id.clone(), run));
                            }
                        }
                    }
                    Err(e) => {
                        error!(message_id = %d.id, %job_id, error = %e, "a schedule tick failed");
                        failed.push(d.id.clone());
                    }
                },
            }
        }
        if !later.is_empty()
            && let Err(e) = self.queue.enqueue(&later).await
        {
            // Which delivery a failed re-send belonged to is lost in the batch: fail them all
            // (a run delivered again is never sent twice).
            error!(error = %e, "could not send runs back to wait");
            return deliveries.iter().map(|d| d.id.clone()).collect();
        }
        let messages: Vec<RunMessage> = due.iter().map(|(_, m)| m.clone()).collect();
        match self.executor.process(&messages).await {
            Ok(dispositions) => {
                let mut waits = Vec::new();
                for ((_, m), disposition) in due.iter().zip(dispositions) {
                    if let Disposition::Later(wait) = disposition {
                        waits.push((m.clone(), now + wait));
                    }
                }
                if !waits.is_empty()
                    && let Err(e) = self.queue.enqueue(&waits).await
                {
                    error!(error = %e, "could not send in-flight duplicates back to wait");
                    failed.extend(due.iter().map(|(id, _)| id.clone()));
                }
            }
            Err(e) => {
                error!(error = %e, "the executor failed on a batch; its runs come again");
                failed.extend(due.iter().map(|(id, _)| id.clone()));
            }
        }
        failed.sort();
        failed.dedup();
        failed
    }

    /// A schedule fired for a job at `at`: the runs it stands for (with when each is due),
    /// after moving the job's next run on. Nothing if the job is gone, paused, or `at` is not
    /// a run of its schedule now (a tick of an outdated schedule, or a second tick for a time
    /// already handled).
    pub async fn tick(
        &self,
        team: &TeamId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<(RunMessage, DateTime<Utc>)>> {
        let at = whole_seconds(at);
        for _ in 0..8 {
            let Some(mut job) = self.jobs.get(team, id).await? else {
                info!(job_id = %id, scheduled_at = %at, "tick dropped: the job was deleted");
                return Ok(Vec::new());
            };
            if !job.enabled {
                info!(job_id = %id, scheduled_at = %at, "tick dropped: the job is paused");
                return Ok(Vec::new());
            }
            let fires = job
                .next_run_at
                .is_some_and(|next| job.spec.schedule.fires_at(at, next));
            if !fires {
                info!(job_id = %id, scheduled_at = %at, next_run_at = ?job.next_run_at,
                    "tick dropped: not a run of the job's schedule (outdated or already handled)");
                return Ok(Vec::new());
            }
            let runs = runs_of_tick(&job, at);
            let now = whole_seconds(self.clock.now());
            let expected = job.version;
            job.version += 1;
            if job.spec.schedule.kind() == ScheduleType::Once {
                job.enabled = false;
                job.next_run_at = None;
                job.updated_at = now;
            } else {
                // For `every_30s` the half-minute run made by this tick is the next one.
                job.next_run_at = job.spec.schedule.next_run(at, now);
            }
            match self.jobs.update(&job, expected).await? {
                UpdateOutcome::Updated => {}
                UpdateOutcome::Conflict => continue,
                UpdateOutcome::NotFound => return Ok(Vec::new()),
            }
            if job.spec.schedule.kind() == ScheduleType::Once
                && let Err(e) = self.schedules.job_changed(&job).await
            {
                warn!(job_id = %id, error = %e,
                    "the fired one-time schedule could not be removed; reconciliation will");
            }
            info!(job_id = %id, scheduled_at = %at, runs = runs.len(), "schedule tick accepted");
            return Ok(runs);
        }
        warn!(job_id = %id, scheduled_at = %at, "tick dropped: the job kept changing");
        Ok(Vec::new())
    }
}

/// The runs one tick stands for: the run at `at`, and for a sub-minute interval the ones
/// after it within the minute (`every_30s`: `at + 30 s`).
fn runs_of_tick(job: &Job, at: DateTime<Utc>) -> Vec<(RunMessage, DateTime<Utc>)> {
    let run = |t: DateTime<Utc>| {
        (
            RunMessage {
                team: job.team.clone(),
                job_id: job.id,
                run_id: RunId::scheduled(job.id, t),
                trigger: Trigger::Schedule,
                scheduled_at: t,
                attempt: 1,
                generation: job.generation,
            },
            t,
        )
    };
    let mut runs = vec![run(at)];
    if let Some(offset) = job.spec.schedule.eventbridge().sub_minute_offset {
        let mut t = at + chrono::Duration::seconds(i64::from(offset));
        while t < at + chrono::Duration::minutes(1) {
            runs.push(run(t));
            t += chrono::Duration::seconds(i64::from(offset));
        }
    }
    runs
}
