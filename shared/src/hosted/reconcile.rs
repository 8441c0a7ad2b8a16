//! The reconcile pass (the reconcile function, every 5 minutes): repairs every job's
//! schedules where they drifted from the store, and removes the schedules of deleted jobs.

use std::collections::HashSet;

use crate::ports::{JobStore, PageRequest, ScheduleReconciler, StoreResult};

/// What a reconcile pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub jobs: u64,
    pub schedules_repaired: u64,
    pub orphans_removed: u64,
    pub executions_pruned: u64,
}

/// Repairs the schedules of every stored job, a page at a time, then removes the schedules
/// whose job is gone. Existing schedules are listed first: a schedule listed then belongs to
/// a job that existed then, so the scan that follows sees it unless it was deleted since.
pub async fn reconcile(
    jobs: &dyn JobStore,
    schedules: &dyn ScheduleReconciler,
    page_size: u32,
) -> StoreResult<ReconcileReport> {
    let existing = schedules.existing().await?;
    let mut report = ReconcileReport::default();
    let mut known = HashSet::new();
    let mut after = None;
    loop {
        let page = jobs
            .scan(PageRequest {
                limit: Some(page_size),
                after,
            })
            .await?;
        report.jobs += page.items.len() as u64;
        known.extend(page.items.iter().map(|j| j.id));
        report.schedules_repaired += schedules.repair(&page.items, &existing).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    report.orphans_removed = schedules.remove_orphans(&existing, &known).await?;
    Ok(report)
}
