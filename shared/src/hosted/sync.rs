//! The stream sync (the sync function, fed by the jobs table's DynamoDB stream): every change
//! to a job that changes the schedules it wants is followed by making its schedules what the
//! job says *now*, read again from the store. The API syncs inline after each write; this is
//! what repairs, within seconds, an inline sync that failed (or a write made by anything
//! else). Reading the job again makes a record's order and repetition harmless: however often
//! and late a change comes, the schedules end as the job is.

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::{error, info};

use crate::domain::{JobId, TeamId};
use crate::ports::{JobStore, Repair, ScheduleReconciler, StoreResult};

/// One record of the jobs table's stream, as the sync needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobChange {
    /// The record's sequence number, named in a failure report (Lambda retries from it).
    pub sequence: String,
    pub team: TeamId,
    pub id: JobId,
    /// False when the old and new images want the same schedules (a run's end, a next run
    /// moved on): nothing to do, no call made.
    pub schedules_may_differ: bool,
}

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub records: u64,
    /// Jobs whose schedules were brought in step (each once per batch).
    pub jobs_synced: u64,
    pub repair: Repair,
    /// Records whose job failed: reported, so that Lambda tries again from the first.
    pub failed: u64,
}

#[derive(Clone)]
pub struct SyncHandler {
    pub jobs: Arc<dyn JobStore>,
    pub schedules: Arc<dyn ScheduleReconciler>,
}

impl SyncHandler {
    /// Handles a batch (in stream order). Returns the report and the sequence number of the
    /// first record that must come again, if any: DynamoDB stream batches are retried from
    /// the lowest failed sequence number, so everything after it comes again too (harmless:
    /// each job is read again).
    pub async fn handle(&self, changes: &[JobChange]) -> (SyncReport, Option<String>) {
        let mut report = SyncReport {
            records: changes.len() as u64,
            ..SyncReport::default()
        };
        // Each job once, however many of its records the batch holds; with the first of
        // its records, for the failure report.
        let mut first: BTreeMap<(TeamId, JobId), usize> = BTreeMap::new();
        for (i, c) in changes.iter().enumerate() {
            if c.schedules_may_differ {
                first.entry((c.team.clone(), c.id)).or_insert(i);
            }
        }
        let mut failed_at: Option<usize> = None;
        for ((team, id), i) in first {
            match self.sync(&team, id).await {
                Ok(r) => {
                    report.jobs_synced += 1;
                    report.repair.calls += r.calls;
                    report.repair.changed += r.changed;
                }
                Err(e) => {
                    error!(job_id = %id, error = %e, "stream sync failed; the record comes again");
                    report.failed += 1;
                    failed_at = Some(failed_at.map_or(i, |f| f.min(i)));
                }
            }
        }
        if report.repair.changed > 0 {
            info!(?report, "stream sync repaired schedules");
        }
        (report, failed_at.map(|i| changes[i].sequence.clone()))
    }

    async fn sync(&self, team: &TeamId, id: JobId) -> StoreResult<Repair> {
        let job = self.jobs.get(team, id).await?;
        self.schedules.converge(id, job.as_ref()).await
    }
}
