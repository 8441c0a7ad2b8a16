//! The embedded scheduler: an in-process timer over the jobs' `next_run_at`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, watch};
use tracing::error;

use crate::adapters::sqlite::SqliteRunQueue;
use crate::domain::{CatchUp, Job, JobId, TeamId};
use crate::ports::{Clock, ScheduleSync, StoreResult};

/// Jobs claimed per transaction.
const CLAIM_BATCH: usize = 2_000;
/// The scheduler looks again at least this often, whatever it expects.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Jobs are claimed this long before they are due, their runs queued for their exact time:
/// when a second with thousands of runs comes, the work of advancing the jobs is done and
/// the first webhook goes out at once. A job's `next_run_at` therefore moves on to its
/// following run up to this long before a run, and a schedule change made in that last
/// moment applies from the following run (a pause or delete still stops it: the executor
/// checks the job before each attempt).
pub const LOOKAHEAD: Duration = Duration::from_secs(1);

/// The embedded `ScheduleSync`: there is nothing to create, only a timer to wake.
pub struct TimerScheduleSync {
    changes: Arc<Notify>,
}

impl TimerScheduleSync {
    pub fn new(changes: Arc<Notify>) -> Self {
        Self { changes }
    }
}

#[async_trait]
impl ScheduleSync for TimerScheduleSync {
    async fn job_changed(&self, _job: &Job) -> StoreResult<()> {
        self.changes.notify_one();
        Ok(())
    }
    async fn job_deleted(&self, _team: &TeamId, _id: JobId) -> StoreResult<()> {
        self.changes.notify_one();
        Ok(())
    }
}

pub(crate) async fn run(
    queue: SqliteRunQueue,
    clock: Arc<dyn Clock>,
    changes: Arc<Notify>,
    misfire_grace: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let catch_up = CatchUp::Within(misfire_grace);
    loop {
        if *stop.borrow() {
            break;
        }
        let now = clock.now();
        match queue
            .claim_jobs_due_by(now, now + LOOKAHEAD, CLAIM_BATCH, catch_up)
            .await
        {
            Ok(claimed) => {
                crate::metrics::runs_fired(claimed.runs.len());
                if claimed.due == CLAIM_BATCH {
                    continue;
                }
            }
            Err(e) => {
                error!(error = %e, "the scheduler could not claim due jobs; retrying in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
        }
        let wait = match queue.next_job_due_at().await {
            Ok(Some(t)) => (t - LOOKAHEAD - clock.now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_SLEEP),
            Ok(None) => MAX_SLEEP,
            Err(e) => {
                error!(error = %e, "the scheduler could not read the next due time");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changes.notified() => {}
            _ = stop.changed() => break,
        }
    }
}
