//! The executor's part of the overlap policy: when a guarded job's run ends, its marker is
//! released and the run waiting for it started; while a retry is pending, the run's lease
//! covers it. (Admission itself is `Job::admit`, applied by the stores' `begin_attempts`.)

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::Executor;
use crate::domain::{Job, RunId, RunMarker, RunMessage};
use crate::ports::{StoreResult, UpdateOutcome};
use crate::service::contention::{Attempt, until_done};

/// A change of a job's marker, and the run to enqueue before it is written.
struct MarkerChange {
    marker: RunMarker,
    enqueue: Option<RunMessage>,
}

impl Executor {
    /// Run `run` of `job` ended: the marker is freed, and the run waiting in it, if any,
    /// takes it and is enqueued. The run is enqueued before the marker is written: if the
    /// write is lost (a crash), the run finds itself waiting, and is delivered again until
    /// the lease ends; a run enqueued twice is one run (its attempt is recorded once).
    pub(super) async fn release_marker(&self, job: &Job, run: RunId) -> StoreResult<()> {
        let now = self.clock.now();
        let lease = job.attempt_lease();
        self.change_marker(job, |marker| {
            let released = marker.release(run, now, lease)?;
            Some(MarkerChange {
                marker: released.marker,
                enqueue: released.promoted,
            })
        })
        .await
    }

    /// A retry of `run` is pending until `at`: the run keeps the marker past it.
    pub(super) async fn extend_marker(
        &self,
        job: &Job,
        run: RunId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let until = at + job.attempt_lease();
        self.change_marker(job, |marker| {
            Some(MarkerChange {
                marker: marker.extended(run, until)?,
                enqueue: None,
            })
        })
        .await
    }

    /// Reads the job's marker, applies `change`, and writes the result if the marker is
    /// still the one read (again, when it was not).
    async fn change_marker(
        &self,
        job: &Job,
        change: impl Fn(&RunMarker) -> Option<MarkerChange>,
    ) -> StoreResult<()> {
        let (team, id) = (&job.team, job.id);
        let change = &change;
        let done = until_done(|| async move {
            let Some(current) = self.jobs.get(team, id).await? else {
                return StoreResult::Ok(Attempt::Done(()));
            };
            let Some(next) = change(&current.run_marker) else {
                return Ok(Attempt::Done(()));
            };
            if let Some(waiting) = &next.enqueue {
                let at = current.fires_at(waiting.scheduled_at).max(self.clock.now());
                self.queue.enqueue(&[(waiting.clone(), at)]).await?;
                info!(job_id = %id, run_id = %waiting.run_id, "the waiting run starts");
            }
            let swapped = self
                .jobs
                .swap_run_marker(team, id, &current.run_marker, &next.marker)
                .await?;
            Ok(match swapped {
                UpdateOutcome::Conflict => Attempt::Conflict,
                UpdateOutcome::Updated | UpdateOutcome::NotFound => Attempt::Done(()),
            })
        })
        .await?;
        if done.is_none() {
            warn!(job_id = %id, "the overlap marker kept changing; its lease will free it");
        }
        Ok(())
    }
}
