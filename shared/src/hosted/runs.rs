//! The hosted executor's queue handling, for any run queue that carries text messages (SQS):
//! turns schedule ticks into runs, holds back runs that arrived early, and drives the
//! executor engine over a batch. It reports which deliveries failed, for SQS's partial batch
//! response: those are delivered again, and after too many tries land in the dead-letter
//! queue. Nothing here sleeps: waits go back to the queue with a delay.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use crate::domain::time::whole_seconds;
use crate::domain::{CatchUp, Firing, Job, JobId, QueuedMessage, RunMessage, TeamId};
use crate::executor::{Disposition, Due, Executor};
use crate::ports::{Clock, JobStore, RunQueue, ScheduleSync, StoreResult, UpdateOutcome};
use crate::schedule::ScheduleType;
use crate::service::contention::{Attempt, until_done};

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

/// A batch sorted out: runs to execute now (each with the delivery it came from), runs to
/// send back to wait, and deliveries that failed.
#[derive(Default)]
struct Sorted {
    due: Vec<(String, Due)>,
    later: Vec<(RunMessage, DateTime<Utc>)>,
    failed: Vec<String>,
}

impl Sorted {
    /// A run due at `at`, with its job when a tick just read it (its begin reads it only
    /// when it waited in the queue first).
    fn run(&mut self, delivery: &str, run: Due, at: DateTime<Utc>, now: DateTime<Utc>) {
        if at - now > EARLY_TOLERANCE {
            self.later.push((run.message, at));
        } else {
            self.due.push((delivery.to_owned(), run));
        }
    }
}

/// The runs a tick stands for, with when each is due, and the job as the tick read it.
struct Ticked {
    job: Option<Arc<Job>>,
    runs: Vec<(RunMessage, DateTime<Utc>)>,
}

impl Ticked {
    fn none() -> Self {
        Self {
            job: None,
            runs: Vec::new(),
        }
    }
}

impl RunHandler {
    /// Handles a batch. Returns the ids of the deliveries that failed and must come again.
    pub async fn handle(&self, deliveries: &[Delivery]) -> Vec<String> {
        let now = self.clock.now();
        let mut sorted = self.sort(deliveries, now).await;
        if !sorted.later.is_empty()
            && let Err(e) = self.queue.enqueue(&sorted.later).await
        {
            // Which delivery a failed re-send belonged to is lost in the batch: fail them all
            // (a run delivered again is never sent twice).
            error!(error = %e, "could not send runs back to wait");
            return deliveries.iter().map(|d| d.id.clone()).collect();
        }
        let mut failed = std::mem::take(&mut sorted.failed);
        failed.extend(self.execute(&sorted.due, now).await);
        failed.sort();
        failed.dedup();
        failed
    }

    /// Reads each delivery: a run (due now or later), or a tick turned into its runs.
    async fn sort(&self, deliveries: &[Delivery], now: DateTime<Utc>) -> Sorted {
        let mut sorted = Sorted::default();
        for d in deliveries {
            match serde_json::from_str::<QueuedMessage>(&d.body) {
                Err(e) => {
                    error!(message_id = %d.id, error = %e,
                        "an unreadable message: failed, so that it ends in the dead-letter queue");
                    sorted.failed.push(d.id.clone());
                }
                Ok(QueuedMessage::Run { run, deliver_at }) => {
                    sorted.run(&d.id, Due::of(run), deliver_at, now)
                }
                Ok(QueuedMessage::Tick {
                    team,
                    job_id,
                    scheduled_at,
                }) => match self.tick(&team, job_id, scheduled_at).await {
                    Ok(ticked) => {
                        for (message, at) in ticked.runs {
                            let job = ticked.job.clone();
                            sorted.run(&d.id, Due { message, job }, at, now);
                        }
                    }
                    Err(e) => {
                        error!(message_id = %d.id, %job_id, error = %e, "a schedule tick failed");
                        sorted.failed.push(d.id.clone());
                    }
                },
            }
        }
        sorted
    }

    /// Runs the due runs through the executor; returns the deliveries that must come again.
    async fn execute(&self, due: &[(String, Due)], now: DateTime<Utc>) -> Vec<String> {
        let runs: Vec<Due> = due.iter().map(|(_, r)| r.clone()).collect();
        let all = || due.iter().map(|(id, _)| id.clone()).collect();
        let dispositions = match self.executor.process_due(&runs).await {
            Ok(d) => d,
            Err(e) => {
                error!(error = %e, "the executor failed on a batch; its runs come again");
                return all();
            }
        };
        let waits: Vec<_> = runs
            .into_iter()
            .zip(dispositions)
            .filter_map(|(r, d)| match d {
                Disposition::Later(wait) => Some((r.message, now + wait)),
                Disposition::Done => None,
            })
            .collect();
        if !waits.is_empty()
            && let Err(e) = self.queue.enqueue(&waits).await
        {
            error!(error = %e, "could not send in-flight duplicates back to wait");
            return all();
        }
        Vec::new()
    }

    /// A schedule fired for a job at `at`: the runs it stands for (with when each is due),
    /// by the firing rule (`Job::fire`). Nothing if the job is gone, paused, or `at` is not
    /// a run of its schedule now (a tick of an outdated schedule).
    ///
    /// A recurring job is not written: its stored `next_run_at` stays the first run after
    /// its last change (the grid a tick must be on; what the API shows is `Job::next_run`),
    /// and a second tick for a time already handled makes the same run, which the attempt's
    /// record refuses to send twice. A `once` job is written: it ends.
    async fn tick(&self, team: &TeamId, id: JobId, at: DateTime<Utc>) -> StoreResult<Ticked> {
        let at = whole_seconds(at);
        let Some(job) = self.jobs.get(team, id).await? else {
            info!(job_id = %id, scheduled_at = %at, "tick dropped: the job was deleted");
            return Ok(Ticked::none());
        };
        if !fires_now(&job, at) {
            return Ok(Ticked::none());
        }
        let now = whole_seconds(self.clock.now());
        // A recurring job as read is the job its runs begin against (it is not written);
        // a `once` job is written, so its runs read it again.
        let (firing, read) = match job.spec.schedule.kind() {
            ScheduleType::Once => match self.fire_once(team, id, at).await? {
                Some(firing) => (firing, None),
                None => return Ok(Ticked::none()),
            },
            // A late tick still fires unless the job has a catch-up window of its own.
            _ => {
                let read = Arc::new(job.clone());
                (job.fire(at, now, CatchUp::Always), Some(read))
            }
        };
        let Some(run) = firing.run else {
            info!(job_id = %id, scheduled_at = %at, "tick too late for the job's catch-up window");
            return Ok(Ticked::none());
        };
        let runs = runs_of_tick(&firing.job, run.scheduled_at);
        crate::metrics::runs_fired(runs.len());
        info!(job_id = %id, scheduled_at = %run.scheduled_at, runs = runs.len(),
            skipped = firing.skipped, "schedule tick accepted");
        Ok(Ticked { job: read, runs })
    }

    /// Fires a `once` job and stores it ended (disabled, no next run), then removes its
    /// schedule. `None` if it was gone, no longer fires at `at`, or kept changing.
    async fn fire_once(
        &self,
        team: &TeamId,
        id: JobId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Firing>> {
        let accepted = until_done(|| async move {
            let Some(job) = self.jobs.get(team, id).await? else {
                return StoreResult::Ok(Attempt::Done(None));
            };
            if !fires_now(&job, at) {
                return Ok(Attempt::Done(None));
            }
            let expected = job.version;
            let firing = job.fire(at, whole_seconds(self.clock.now()), CatchUp::Always);
            Ok(match self.jobs.update(&firing.job, expected).await? {
                UpdateOutcome::Updated => Attempt::Done(Some(firing)),
                UpdateOutcome::Conflict => Attempt::Conflict,
                UpdateOutcome::NotFound => Attempt::Done(None),
            })
        })
        .await?;
        let Some(fired) = accepted else {
            warn!(job_id = %id, scheduled_at = %at, "tick dropped: the job kept changing");
            return Ok(None);
        };
        if let Some(firing) = &fired
            && let Err(e) = self.schedules.job_changed(&firing.job).await
        {
            warn!(job_id = %id, error = %e,
                "the fired one-time schedule could not be removed; reconciliation will");
        }
        Ok(fired)
    }
}

/// Whether a tick for `at` is a run of the job as it is now.
fn fires_now(job: &Job, at: DateTime<Utc>) -> bool {
    if !job.enabled {
        info!(job_id = %job.id, scheduled_at = %at, "tick dropped: the job is paused");
        return false;
    }
    let fires = job
        .next_run_at
        .is_some_and(|next| job.spec.schedule.fires_at(at, next));
    if !fires {
        info!(job_id = %job.id, scheduled_at = %at, next_run_at = ?job.next_run_at,
            "tick dropped: not a run of the job's schedule (outdated or already handled)");
    }
    fires
}

/// The runs one tick stands for, each with when it fires (its time plus the job's jitter:
/// a run not due yet goes back to the queue with a delay): the run at `at`, and for a
/// sub-minute interval the ones after it within the minute (`every_30s`: `at + 30 s`).
fn runs_of_tick(job: &Job, at: DateTime<Utc>) -> Vec<(RunMessage, DateTime<Utc>)> {
    let mut runs = vec![(RunMessage::scheduled(job, at), job.fires_at(at))];
    if let Some(offset) = job.spec.schedule.eventbridge().sub_minute_offset {
        let step = chrono::Duration::seconds(i64::from(offset));
        let mut t = at + step;
        while t < at + chrono::Duration::minutes(1) {
            runs.push((RunMessage::scheduled(job, t), job.fires_at(t)));
            t += step;
        }
    }
    runs
}
