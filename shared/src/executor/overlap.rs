//! The executor's part of the overlap policy: when a guarded job's run ends, its marker is
//! released and the run waiting for it started; while a retry is pending, the run's lease
//! covers it. (Admission itself is `Job::admit`, applied by the stores' `begin_attempts`.)
//!
//! A batch's changes are first tried against the marker each attempt began with (no read,
//! one write for the batch: a burst of guarded jobs releases thousands at once); a marker
//! changed since (a run buffered meanwhile) is read again and retried one by one.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::Executor;
use crate::domain::{Job, RunId, RunMarker, RunMessage};
use crate::ports::{MarkerSwap, StoreResult, UpdateOutcome};
use crate::service::contention::{Attempt, until_done};

/// A change of a job's marker, and the run to enqueue before it is written.
struct MarkerChange {
    marker: RunMarker,
    enqueue: Option<RunMessage>,
}

/// What happens to a marker: a run's end, or a retry pending until a time.
#[derive(Clone, Copy)]
pub(super) enum MarkerEvent {
    Ended(RunId),
    RetryPending(RunId, DateTime<Utc>),
}

impl MarkerEvent {
    /// The change `self` makes to `marker` of `job` at `now`, if any.
    fn change(self, job: &Job, marker: &RunMarker, now: DateTime<Utc>) -> Option<MarkerChange> {
        match self {
            Self::Ended(run) => {
                let released = marker.release(run, now, job.attempt_lease())?;
                Some(MarkerChange {
                    marker: released.marker,
                    enqueue: released.promoted,
                })
            }
            Self::RetryPending(run, at) => Some(MarkerChange {
                marker: marker.extended(run, at + job.attempt_lease())?,
                enqueue: None,
            }),
        }
    }
}

impl Executor {
    /// Applies `events` to their jobs' markers. A released marker's waiting run is enqueued
    /// before the marker is written: if the write is lost (a crash), the run finds itself
    /// waiting and is delivered again until the lease ends; a run enqueued twice is one run
    /// (its attempt is recorded once).
    pub(super) async fn change_markers(&self, events: &[(&Job, MarkerEvent)]) -> StoreResult<()> {
        let now = self.clock.now();
        let mut swaps = Vec::new();
        let mut enqueue = Vec::new();
        let mut origins = Vec::new();
        for &(job, event) in events {
            match event.change(job, &job.run_marker, now) {
                Some(change) => {
                    if let Some(waiting) = change.enqueue {
                        enqueue.push(self.promoted(job, waiting));
                    }
                    swaps.push(MarkerSwap {
                        team: job.team.clone(),
                        job_id: job.id,
                        expected: job.run_marker.clone(),
                        new: change.marker,
                    });
                    origins.push((job, event));
                }
                // Not the marker it began with: read what it is now.
                None => self.change_marker(job, event).await?,
            }
        }
        if !enqueue.is_empty() {
            self.queue.enqueue(&enqueue).await?;
        }
        let outcomes = self.jobs.swap_run_markers(&swaps).await?;
        for ((job, event), outcome) in origins.into_iter().zip(outcomes) {
            if outcome == UpdateOutcome::Conflict {
                self.change_marker(job, event).await?;
            }
        }
        Ok(())
    }

    /// The waiting run, due when its jitter says (now, if that has passed).
    fn promoted(&self, job: &Job, waiting: RunMessage) -> (RunMessage, DateTime<Utc>) {
        info!(job_id = %job.id, run_id = %waiting.run_id, "the waiting run starts");
        let at = job.fires_at(waiting.scheduled_at).max(self.clock.now());
        (waiting, at)
    }

    /// Reads the job's marker, applies `event`, and writes the result if the marker is
    /// still the one read (again, when it was not).
    async fn change_marker(&self, job: &Job, event: MarkerEvent) -> StoreResult<()> {
        let (team, id) = (&job.team, job.id);
        let done = until_done(|| async move {
            let Some(current) = self.jobs.get(team, id).await? else {
                return StoreResult::Ok(Attempt::Done(()));
            };
            let Some(next) = event.change(&current, &current.run_marker, self.clock.now()) else {
                return Ok(Attempt::Done(()));
            };
            if let Some(waiting) = next.enqueue {
                self.queue
                    .enqueue(&[self.promoted(&current, waiting)])
                    .await?;
            }
            let swap = MarkerSwap {
                team: team.clone(),
                job_id: id,
                expected: current.run_marker.clone(),
                new: next.marker,
            };
            Ok(match self.jobs.swap_run_markers(&[swap]).await?[..] {
                [UpdateOutcome::Conflict] => Attempt::Conflict,
                _ => Attempt::Done(()),
            })
        })
        .await?;
        if done.is_none() {
            warn!(job_id = %id, "the overlap marker kept changing; its lease will free it");
        }
        Ok(())
    }
}
