//! `ExecutionStore` conformance.

use chrono::{DateTime, Duration, Utc};
use krafter_shared::domain::{Execution, ExecutionId, Job, JobId, TeamId};
use krafter_shared::ports::{AttemptStart, BeginOutcome, PageRequest, UpdateOutcome};

use crate::backend::Backend;
use crate::fixtures::*;

async fn stored_job(b: &Backend, team: &TeamId) -> Job {
    let j = interval_job(team);
    b.jobs.insert(&j, QUOTA).await.unwrap();
    j
}

async fn begin(b: &Backend, s: &AttemptStart) -> BeginOutcome {
    let mut out = b
        .executions
        .begin_attempts(std::slice::from_ref(s))
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    out.remove(0)
}

/// Records and finishes one attempt of a scheduled run at `at`, started then.
async fn finished(b: &Backend, job: &Job, at: DateTime<Utc>) -> Execution {
    let s = start(scheduled_run(job, at, 1), at);
    expect_started(&begin(b, &s).await);
    let outcome = success(at + Duration::seconds(2));
    b.executions
        .finish_attempts(&[(s.clone(), outcome.clone())])
        .await
        .unwrap();
    Execution {
        outcome: Some(outcome),
        ..in_flight(&s)
    }
}

fn exec_ids(items: &[Execution]) -> Vec<ExecutionId> {
    items.iter().map(|e| e.id).collect()
}

async fn all(b: &Backend, job: &Job) -> Vec<Execution> {
    let page = b
        .executions
        .list(&job.team, job.id, PageRequest::all(), &Default::default())
        .await
        .unwrap();
    assert!(page.next.is_none());
    page.items
}

conformance_tests! {
    pub async fn beginning_an_attempt_records_it_in_flight_and_returns_the_stored_job(b: Backend) {
        let mut j = stored_job(&b, &team_a()).await;
        // The job as stored now, not as the message saw it.
        j.spec.failure_notify = true;
        j.version = 2;
        j.updated_at = mins(1);
        assert_eq!(b.jobs.update(&j, 1).await.unwrap(), UpdateOutcome::Updated);

        let s = start(scheduled_run(&j, mins(5), 1), secs(301));
        let out = begin(&b, &s).await;
        let current = b.jobs.get(&j.team, j.id).await.unwrap().unwrap();
        assert_eq!(expect_started(&out), &current);
        assert_eq!(&current, &j);

        let record = record(b.executions.as_ref(), &j, s.execution_id()).await;
        assert_eq!(record, Some(in_flight(&s)));
        assert!(
            all(&b, &j).await.is_empty(),
            "attempts in flight are not listed"
        );
    }

    pub async fn a_manual_run_is_recorded_with_its_trigger(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let s = start(manual_run(&j, secs(42)), secs(43));
        expect_started(&begin(&b, &s).await);
        let record = record(b.executions.as_ref(), &j, s.execution_id())
            .await
            .unwrap();
        assert_eq!(record, in_flight(&s));
    }

    pub async fn a_duplicate_attempt_is_recorded_once(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let first = start(scheduled_run(&j, mins(5), 1), secs(300));
        expect_started(&begin(&b, &first).await);

        // The same message delivered again, later, to another executor.
        let again = start(scheduled_run(&j, mins(5), 1), secs(330));
        let out = begin(&b, &again).await;
        assert_eq!(expect_already_recorded(&out), &in_flight(&first));
        // The same attempt, so the same id: its record is the first delivery's.
        assert_eq!(again.execution_id(), first.execution_id());
        assert_eq!(
            record(b.executions.as_ref(), &j, again.execution_id()).await,
            Some(in_flight(&first))
        );

        b.executions
            .finish_attempts(&[(first.clone(), success(secs(302)))])
            .await
            .unwrap();
        let listed = all(&b, &j).await;
        assert_eq!(exec_ids(&listed), vec![first.execution_id()]);
    }

    pub async fn a_duplicate_within_one_batch_is_recorded_once(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let first = start(scheduled_run(&j, mins(5), 1), secs(300));
        let twin = start(scheduled_run(&j, mins(5), 1), secs(300));
        let out = b
            .executions
            .begin_attempts(&[first.clone(), twin.clone()])
            .await
            .unwrap();
        assert_eq!(out.len(), 2);
        expect_started(&out[0]);
        assert_eq!(expect_already_recorded(&out[1]), &in_flight(&first));
        assert_eq!(
            record(b.executions.as_ref(), &j, twin.execution_id()).await,
            Some(in_flight(&first))
        );
    }

    pub async fn a_duplicate_of_a_finished_attempt_returns_its_outcome(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let first = start(scheduled_run(&j, mins(5), 2), secs(300));
        expect_started(&begin(&b, &first).await);
        b.executions
            .finish_attempts(&[(first.clone(), failure(secs(301)))])
            .await
            .unwrap();

        let out = begin(&b, &start(scheduled_run(&j, mins(5), 2), secs(900))).await;
        let prior = expect_already_recorded(&out);
        assert_eq!(prior.id, first.execution_id());
        assert_eq!(prior.outcome, Some(failure(secs(301))));
    }

    pub async fn each_attempt_of_a_run_is_recorded_separately(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let one = start(scheduled_run(&j, mins(5), 1), secs(300));
        let two = start(scheduled_run(&j, mins(5), 2), secs(315));
        let other_run = start(scheduled_run(&j, mins(10), 1), secs(600));
        expect_started(&begin(&b, &one).await);
        expect_started(&begin(&b, &two).await);
        expect_started(&begin(&b, &other_run).await);
        for s in [&one, &two, &other_run] {
            let record = record(b.executions.as_ref(), &j, s.execution_id()).await;
            assert_eq!(record, Some(in_flight(s)));
        }
    }

    pub async fn a_run_made_before_a_pause_is_dropped(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let queued = scheduled_run(&j, mins(5), 1);
        let mut paused = j.clone();
        paused.enabled = false;
        paused.generation += 1;
        paused.next_run_at = None;
        paused.version = 2;
        assert_eq!(
            b.jobs.update(&paused, 1).await.unwrap(),
            UpdateOutcome::Updated
        );

        let s = start(queued.clone(), secs(300));
        expect_job_gone(&begin(&b, &s).await);
        assert!(
            record(b.executions.as_ref(), &j, s.execution_id())
                .await
                .is_none()
        );

        // Still gone after resuming: the run belongs to the old generation.
        let mut resumed = paused.clone();
        resumed.enabled = true;
        resumed.next_run_at = Some(mins(10));
        resumed.version = 3;
        assert_eq!(
            b.jobs.update(&resumed, 2).await.unwrap(),
            UpdateOutcome::Updated
        );
        let s = start(queued, secs(310));
        expect_job_gone(&begin(&b, &s).await);
        assert!(
            record(b.executions.as_ref(), &j, s.execution_id())
                .await
                .is_none()
        );

        // A run of the new generation starts.
        let fresh = start(scheduled_run(&resumed, mins(10), 1), secs(600));
        expect_started(&begin(&b, &fresh).await);
    }

    pub async fn a_run_of_a_deleted_job_is_dropped(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        assert!(b.jobs.delete(&j.team, j.id).await.unwrap());
        let s = start(scheduled_run(&j, mins(5), 1), secs(300));
        expect_job_gone(&begin(&b, &s).await);
        assert!(
            record(b.executions.as_ref(), &j, s.execution_id())
                .await
                .is_none()
        );
    }

    pub async fn a_run_naming_another_teams_job_is_dropped(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let mut m = scheduled_run(&j, mins(5), 1);
        m.team = team_b();
        let s = start(m, secs(300));
        expect_job_gone(&begin(&b, &s).await);
        assert!(
            b.executions
                .get(&team_b(), j.id, s.execution_id())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            b.executions
                .get(&team_a(), j.id, s.execution_id())
                .await
                .unwrap()
                .is_none()
        );
    }

    pub async fn a_batch_of_starts_gets_one_outcome_each_in_order(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let k = stored_job(&b, &team_b()).await;
        let gone = interval_job(&team_a());
        let mut old_generation = scheduled_run(&k, mins(5), 1);
        old_generation.generation = 7;

        let earlier = start(scheduled_run(&j, mins(5), 1), secs(300));
        expect_started(&begin(&b, &earlier).await);

        let batch = vec![
            start(scheduled_run(&j, mins(10), 1), secs(600)),
            start(scheduled_run(&gone, mins(5), 1), secs(600)),
            start(scheduled_run(&j, mins(5), 1), secs(600)),
            start(old_generation, secs(600)),
            start(scheduled_run(&k, mins(5), 1), secs(600)),
        ];
        let out = b.executions.begin_attempts(&batch).await.unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(expect_started(&out[0]).id, j.id);
        expect_job_gone(&out[1]);
        assert_eq!(expect_already_recorded(&out[2]), &in_flight(&earlier));
        expect_job_gone(&out[3]);
        assert_eq!(expect_started(&out[4]).id, k.id);

        let recorded = |s: &AttemptStart| {
            let (team, job) = (s.message.team.clone(), s.message.job_id);
            let id = s.execution_id();
            let executions = b.executions.clone();
            async move { executions.get(&team, job, id).await.unwrap() }
        };
        assert_eq!(recorded(&batch[0]).await, Some(in_flight(&batch[0])));
        assert_eq!(recorded(&batch[1]).await, None);
        // The same attempt as `earlier`: its id, its record.
        assert_eq!(recorded(&batch[2]).await, Some(in_flight(&earlier)));
        // The stale message stands for the same attempt as the next one, which began.
        assert_eq!(batch[3].execution_id(), batch[4].execution_id());
        assert_eq!(recorded(&batch[4]).await, Some(in_flight(&batch[4])));
        assert!(b.executions.begin_attempts(&[]).await.unwrap().is_empty());
    }

    pub async fn finishing_an_attempt_records_its_outcome(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let ok = start(scheduled_run(&j, mins(5), 1), secs(300));
        let bad = start(scheduled_run(&j, mins(10), 1), secs(600));
        b.executions
            .begin_attempts(&[ok.clone(), bad.clone()])
            .await
            .unwrap();

        b.executions
            .finish_attempts(&[
                (ok.clone(), success(secs(301))),
                (bad.clone(), failure(secs(630))),
            ])
            .await
            .unwrap();
        let ok_record = record(b.executions.as_ref(), &j, ok.execution_id())
            .await
            .unwrap();
        assert_eq!(
            ok_record,
            Execution {
                outcome: Some(success(secs(301))),
                ..in_flight(&ok)
            }
        );
        let bad_record = record(b.executions.as_ref(), &j, bad.execution_id())
            .await
            .unwrap();
        assert_eq!(
            bad_record,
            Execution {
                outcome: Some(failure(secs(630))),
                ..in_flight(&bad)
            }
        );
    }

    pub async fn a_finished_attempt_is_never_overwritten(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let s = start(scheduled_run(&j, mins(5), 1), secs(300));
        expect_started(&begin(&b, &s).await);
        b.executions
            .finish_attempts(&[(s.clone(), success(secs(301)))])
            .await
            .unwrap();
        b.executions
            .finish_attempts(&[(s.clone(), failure(secs(400)))])
            .await
            .unwrap();

        let record = record(b.executions.as_ref(), &j, s.execution_id())
            .await
            .unwrap();
        assert_eq!(record.outcome, Some(success(secs(301))));
    }

    pub async fn finishing_an_unknown_attempt_changes_nothing(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let never_begun = start(scheduled_run(&j, mins(5), 1), secs(300));
        b.executions
            .finish_attempts(&[(never_begun.clone(), success(secs(1)))])
            .await
            .unwrap();
        assert!(
            record(b.executions.as_ref(), &j, never_begun.execution_id())
                .await
                .is_none()
        );
        assert!(all(&b, &j).await.is_empty());
        b.executions.finish_attempts(&[]).await.unwrap();
    }

    pub async fn only_finished_attempts_are_listed_newest_first(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let one = finished(&b, &j, mins(5)).await;
        let two = finished(&b, &j, mins(10)).await;
        let running = start(scheduled_run(&j, mins(15), 1), mins(15));
        expect_started(&begin(&b, &running).await);
        let three = finished(&b, &j, mins(20)).await;

        assert_eq!(all(&b, &j).await, vec![three, two, one]);
    }

    pub async fn paging_through_executions_returns_each_exactly_once(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let mut expected = Vec::new();
        for i in 0..7 {
            expected.push(finished(&b, &j, mins(5 * (i + 1))).await.id);
        }
        expected.reverse();

        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let page = b
                .executions
                .list(
                    &j.team,
                    j.id,
                    PageRequest {
                        limit: Some(3),
                        after,
                    },
                    &Default::default(),
                )
                .await
                .unwrap();
            sizes.push(page.items.len());
            seen.extend(exec_ids(&page.items));
            match page.next {
                Some(cursor) => {
                    assert_eq!(Some(&cursor), seen.last());
                    after = Some(cursor);
                }
                None => break,
            }
            assert!(sizes.len() < 10, "paging does not end");
        }
        assert_eq!(seen, expected);
        assert_eq!(sizes, vec![3, 3, 1]);

        let exact = b
            .executions
            .list(&j.team, j.id, PageRequest::first(7), &Default::default())
            .await
            .unwrap();
        assert_eq!(exact.items.len(), 7);
        assert_eq!(exact.next, None, "nothing follows");
    }

    pub async fn executions_are_listed_per_team_and_job(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let sibling = stored_job(&b, &team_a()).await;
        let foreign = stored_job(&b, &team_b()).await;
        let mine = finished(&b, &j, mins(5)).await;
        let siblings = finished(&b, &sibling, mins(5)).await;
        let theirs = finished(&b, &foreign, mins(5)).await;

        assert_eq!(all(&b, &j).await, vec![mine]);
        assert_eq!(all(&b, &sibling).await, vec![siblings]);
        assert_eq!(all(&b, &foreign).await, vec![theirs]);
        let cross = b
            .executions
            .list(&team_b(), j.id, PageRequest::all(), &Default::default())
            .await
            .unwrap();
        assert!(cross.items.is_empty());
        let unknown = b
            .executions
            .list(&team_a(), JobId::new(), PageRequest::all(), &Default::default())
            .await
            .unwrap();
        assert!(unknown.items.is_empty());
    }

    pub async fn an_execution_is_read_only_through_its_team_and_job(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let sibling = stored_job(&b, &team_a()).await;
        let e = finished(&b, &j, mins(5)).await;

        assert_eq!(
            b.executions.get(&team_a(), j.id, e.id).await.unwrap(),
            Some(e.clone())
        );
        assert_eq!(b.executions.get(&team_b(), j.id, e.id).await.unwrap(), None);
        assert_eq!(
            b.executions.get(&team_a(), sibling.id, e.id).await.unwrap(),
            None
        );
        assert_eq!(
            b.executions
                .get(&team_a(), j.id, ExecutionId::new())
                .await
                .unwrap(),
            None
        );
    }

    pub async fn deleting_a_jobs_executions_leaves_the_others(b: Backend) {
        let j = stored_job(&b, &team_a()).await;
        let sibling = stored_job(&b, &team_a()).await;
        finished(&b, &j, mins(5)).await;
        finished(&b, &j, mins(10)).await;
        let running = start(scheduled_run(&j, mins(15), 1), mins(15));
        expect_started(&begin(&b, &running).await);
        let kept = finished(&b, &sibling, mins(5)).await;

        // Another team cannot.
        b.executions.delete_for_job(&team_b(), j.id).await.unwrap();
        assert_eq!(all(&b, &j).await.len(), 2);

        b.executions.delete_for_job(&team_a(), j.id).await.unwrap();
        assert!(all(&b, &j).await.is_empty());
        assert!(
            record(b.executions.as_ref(), &j, running.execution_id())
                .await
                .is_none()
        );
        assert_eq!(all(&b, &sibling).await, vec![kept]);
        // Deleting nothing is fine.
        b.executions
            .delete_for_job(&team_a(), JobId::new())
            .await
            .unwrap();
    }

    pub async fn pruning_deletes_only_finished_executions_older_than_the_cutoff(b: Backend) {
        let day = |d: i64| t0() + Duration::days(d);
        let j = stored_job(&b, &team_a()).await;
        let other = stored_job(&b, &team_b()).await;
        // An old attempt still in flight is never pruned.
        let running = start(scheduled_run(&j, day(0), 1), day(0));
        expect_started(&begin(&b, &running).await);
        let mut history = Vec::new();
        for d in 1..=5 {
            history.push(finished(&b, &j, day(d)).await);
        }
        let others = finished(&b, &other, day(1)).await;

        // Cutoff day 3 (exclusive), keep 1: days 1 and 2 go; day 3 is not older than the cutoff.
        assert_eq!(b.executions.prune(day(3), 1).await.unwrap(), 2);
        let mut left = history[2..].to_vec();
        left.reverse();
        assert_eq!(all(&b, &j).await, left);
        assert!(
            record(b.executions.as_ref(), &j, running.execution_id())
                .await
                .is_some()
        );
        assert_eq!(
            all(&b, &other).await,
            vec![others],
            "each job keeps its latest"
        );

        assert_eq!(
            b.executions.prune(day(3), 1).await.unwrap(),
            0,
            "nothing more to prune"
        );
    }

    pub async fn pruning_always_keeps_each_jobs_latest_executions(b: Backend) {
        let day = |d: i64| t0() + Duration::days(d);
        let j = stored_job(&b, &team_a()).await;
        let mut history = Vec::new();
        for d in 1..=5 {
            history.push(finished(&b, &j, day(d)).await);
        }
        // Everything is older than the cutoff; the latest 2 stay.
        assert_eq!(b.executions.prune(day(100), 2).await.unwrap(), 3);
        assert_eq!(
            all(&b, &j).await,
            vec![history[4].clone(), history[3].clone()]
        );
        assert_eq!(
            b.executions.prune(day(100), 0).await.unwrap(),
            2,
            "keep none"
        );
        assert!(all(&b, &j).await.is_empty());
    }

    pub async fn an_attempt_in_flight_does_not_take_the_place_of_a_kept_execution(b: Backend) {
        let day = |d: i64| t0() + Duration::days(d);
        let j = stored_job(&b, &team_a()).await;
        let mut history = Vec::new();
        for d in 1..=4 {
            history.push(finished(&b, &j, day(d)).await);
        }
        let running = start(scheduled_run(&j, day(5), 1), day(5));
        expect_started(&begin(&b, &running).await);

        assert_eq!(b.executions.prune(day(100), 2).await.unwrap(), 2);
        assert_eq!(
            all(&b, &j).await,
            vec![history[3].clone(), history[2].clone()]
        );
        let record = record(b.executions.as_ref(), &j, running.execution_id()).await;
        assert_eq!(record.map(|e| e.outcome), Some(None), "still in flight");
        assert!(matches!(
            b.executions
                .begin_attempts(&[start(scheduled_run(&j, day(5), 1), day(5))])
                .await
                .unwrap()[0],
            BeginOutcome::AlreadyRecorded(_)
        ));
    }
}
