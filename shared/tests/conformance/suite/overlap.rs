//! The overlap marker, on every backend: `begin_attempts` admits a run's first attempt as the
//! job's overlap policy says (`Job::admit`), writing the marker in the same atomic step, and
//! `JobStore::swap_run_marker` replaces it only if it is unchanged.

use krafter_shared::domain::{Admission, Job, Overlap, RunMarker, RunStatus, TeamId};
use krafter_shared::ports::{BeginOutcome, MarkerSwap, UpdateOutcome};

use crate::backend::Backend;
use crate::fixtures::*;

async fn guarded_job(b: &Backend, overlap: Overlap) -> Job {
    let mut j = interval_job(&team_a());
    j.spec.firing.overlap = overlap;
    b.jobs.insert(&j, QUOTA).await.unwrap();
    j
}

pub async fn swap(
    b: &Backend,
    team: &TeamId,
    j: &Job,
    expected: &RunMarker,
    new: &RunMarker,
) -> UpdateOutcome {
    let swap = MarkerSwap {
        team: team.clone(),
        job_id: j.id,
        expected: expected.clone(),
        new: new.clone(),
    };
    let mut out = b.jobs.swap_run_markers(&[swap]).await.unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

async fn stored(b: &Backend, j: &Job) -> Job {
    b.jobs.get(&j.team, j.id).await.unwrap().unwrap()
}

conformance_tests! {
    pub async fn a_run_that_comes_while_another_is_unfinished_is_recorded_as_skipped(b: Backend) {
        let j = guarded_job(&b, Overlap::Skip).await;
        let first = start(scheduled_run(&j, mins(5), 1), mins(5));
        let second = start(manual_run(&j, mins(6)), mins(6));
        let out = b.executions.begin_attempts(&[first.clone(), second.clone()]).await.unwrap();
        expect_started(&out[0]);
        assert!(matches!(out[1], BeginOutcome::Skipped(_)), "{:?}", out[1]);
        let marker = stored(&b, &j).await.run_marker;
        assert_eq!(marker.running.map(|l| l.run_id), Some(first.message.run_id));
        let skipped = record(b.executions.as_ref(), &j, second.execution_id()).await.unwrap();
        let outcome = skipped.outcome.expect("a skipped run is finished at once");
        assert_eq!(outcome.status, RunStatus::Skipped);
        assert!(outcome.error.unwrap().contains(&first.message.run_id.to_string()));
        // A duplicate of the skipped run is the same record, not a second skip.
        let again = b.executions.begin_attempts(&[start(second.message.clone(), mins(7))]).await.unwrap();
        assert!(matches!(again[0], BeginOutcome::AlreadyRecorded(_)));
        // Its retries belong to the run holding the marker.
        let retry = start(first.message.retry(), mins(7));
        expect_started(&b.executions.begin_attempts(&[retry]).await.unwrap()[0]);
    }

    pub async fn under_buffer_one_one_run_waits_in_the_marker_and_the_next_is_skipped(b: Backend) {
        let j = guarded_job(&b, Overlap::BufferOne).await;
        let runs: Vec<_> = (0..3).map(|i| start(manual_run(&j, mins(5 + i)), mins(5 + i))).collect();
        let out = b.executions.begin_attempts(&runs).await.unwrap();
        expect_started(&out[0]);
        assert!(matches!(out[1], BeginOutcome::Buffered), "{:?}", out[1]);
        assert!(matches!(out[2], BeginOutcome::Skipped(_)), "{:?}", out[2]);
        let current = stored(&b, &j).await;
        assert_eq!(current.run_marker.waiting.as_ref(), Some(&runs[1].message));
        assert!(
            record(b.executions.as_ref(), &j, runs[1].execution_id()).await.is_none(),
            "a waiting run has no record yet"
        );
        // Released by the first run's end (the executor's rule), the waiting one holds it.
        let released = current
            .run_marker
            .release(runs[0].message.run_id, mins(8), current.attempt_lease())
            .unwrap();
        assert_eq!(released.promoted.as_ref(), Some(&runs[1].message));
        let swapped = swap(&b, &j.team, &j, &current.run_marker, &released.marker).await;
        assert_eq!(swapped, UpdateOutcome::Updated);
        let promoted = start(runs[1].message.clone(), mins(8));
        expect_started(&b.executions.begin_attempts(&[promoted]).await.unwrap()[0]);
    }

    pub async fn the_marker_is_swapped_only_while_unchanged(b: Backend) {
        let j = guarded_job(&b, Overlap::Skip).await;
        let held = match j.admit(&manual_run(&j, mins(5)), mins(5)) {
            Admission::Start(Some(m)) => m,
            other => panic!("{other:?}"),
        };
        let swap = |expected: RunMarker, new: RunMarker| {
            let (b, j) = (&b, &j);
            async move { swap(b, &j.team, j, &expected, &new).await }
        };
        assert_eq!(swap(RunMarker::default(), held.clone()).await, UpdateOutcome::Updated);
        assert_eq!(swap(RunMarker::default(), held.clone()).await, UpdateOutcome::Conflict);
        assert_eq!(stored(&b, &j).await.run_marker, held);
        assert_eq!(swap(held.clone(), RunMarker::default()).await, UpdateOutcome::Updated);
        assert!(stored(&b, &j).await.run_marker.is_empty());
        let other = TeamId::parse("beta").unwrap();
        let foreign = super::overlap::swap(&b, &other, &j, &RunMarker::default(), &held).await;
        assert_eq!(foreign, UpdateOutcome::NotFound);
        // An update of the job's definition leaves the marker alone (it is run state).
        assert_eq!(swap(RunMarker::default(), held.clone()).await, UpdateOutcome::Updated);
        let mut renamed = stored(&b, &j).await;
        renamed.spec.name = krafter_shared::domain::JobName::parse("renamed").unwrap();
        renamed.run_marker = RunMarker::default();
        renamed.version += 1;
        assert_eq!(b.jobs.update(&renamed, j.version).await.unwrap(), UpdateOutcome::Updated);
        assert_eq!(stored(&b, &j).await.run_marker, held);
    }

    pub async fn a_job_without_an_overlap_policy_never_writes_a_marker(b: Backend) {
        let j = guarded_job(&b, Overlap::Allow).await;
        let runs: Vec<_> = (0..2).map(|i| start(manual_run(&j, mins(5 + i)), mins(5 + i))).collect();
        for o in b.executions.begin_attempts(&runs).await.unwrap() {
            expect_started(&o);
        }
        assert!(stored(&b, &j).await.run_marker.is_empty());
    }
}
