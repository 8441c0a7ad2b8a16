//! The embedded backend's own queue operations (inherent on `SqliteRunQueue`: no port, no
//! other adapter): delivery times, leases, the scheduler's claim step, start-up recovery,
//! durability.

use std::time::Duration;

use krafter_shared::adapters::sqlite::{Claimed, Delivery, Recovery, SqliteDb};
use krafter_shared::domain::{AttemptOutcome, CatchUp, Job, RunId, RunMessage, RunStatus, Trigger};
use krafter_shared::ports::{ExecutionStore, JobStore, RunQueue, UpdateOutcome};
use serde_json::json;

use crate::backend::SqliteBackend;
use crate::fixtures::*;

const LEASE: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(60);

const CATCH_UP: CatchUp = CatchUp::Within(GRACE);

fn messages(deliveries: &[Delivery]) -> Vec<RunMessage> {
    deliveries.iter().map(|d| d.message.clone()).collect()
}

async fn stored_job(b: &SqliteBackend) -> Job {
    let j = interval_job(&team_a());
    b.jobs.insert(&j, QUOTA).await.unwrap();
    j
}

async fn stored(b: &SqliteBackend, j: &Job) -> Job {
    b.jobs
        .get(&j.team, j.id)
        .await
        .unwrap()
        .expect("the job is stored")
}

/// Invariant 4: a queued run survives the process. Every handle is dropped (the file is
/// closed) and the file opened again.
#[tokio::test]
async fn a_queued_run_survives_reopening_the_file() {
    let b = SqliteBackend::file().await;
    let dir = b.dir.as_ref().unwrap().path().to_owned();
    let path = dir.join("krafter.db");
    let j = interval_job(&team_a());
    b.jobs.insert(&j, QUOTA).await.unwrap();
    let pending = scheduled_run(&j, mins(5), 1);
    let leased = scheduled_run(&j, mins(5), 2);
    b.queue.enqueue(&[(leased.clone(), mins(4))]).await.unwrap();
    b.queue
        .enqueue(&[(pending.clone(), mins(5))])
        .await
        .unwrap();
    let taken = b
        .queue
        .dequeue(mins(4), 10, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(messages(&taken), vec![leased.clone()]);
    let running = start(leased.clone(), mins(4));
    b.executions
        .begin_attempts(std::slice::from_ref(&running))
        .await
        .unwrap();
    let SqliteBackend {
        db,
        jobs,
        executions,
        keys,
        teams,
        queue,
        dir: tempdir,
    } = b;
    drop((db, jobs, executions, keys, teams, queue));
    assert!(path.exists());

    let reopened = SqliteBackend::with(SqliteDb::open(&path).unwrap(), tempdir);
    assert_eq!(reopened.queue.len().await.unwrap(), 2);
    assert_eq!(
        reopened.queue.recover(mins(6), GRACE).await.unwrap(),
        Recovery {
            leases_released: 1,
            attempts_interrupted: 1,
            missed_runs_skipped: 0,
        }
    );
    let mut back = messages(&reopened.queue.dequeue(mins(6), 10, LEASE).await.unwrap());
    back.sort_by_key(|m| m.attempt);
    assert_eq!(back, vec![pending, leased]);
    assert_eq!(&stored(&reopened, &j).await, &j);
    let record = reopened
        .executions
        .get(&j.team, j.id, running.execution_id())
        .await
        .unwrap();
    assert!(record.and_then(|e| e.outcome).is_some());
}

/// One stored job that can no longer be read (written under rules an upgrade tightened, or
/// edited by hand) must not stop the others: it is set aside, and its runs are dropped.
#[tokio::test]
async fn an_unreadable_job_is_set_aside_and_the_others_still_fire() {
    let b = SqliteBackend::file().await;
    let path = b.dir.as_ref().unwrap().path().join("krafter.db");
    let good = stored_job(&b).await;
    let bad = stored_job(&b).await;
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE jobs SET schedule = 'every_fortnight' WHERE id = ?1",
        [bad.id.to_string()],
    )
    .unwrap();

    let Claimed { runs: fired, due } = b
        .queue
        .claim_due_jobs(secs(305), 100, CATCH_UP)
        .await
        .unwrap();
    assert_eq!(due, 2);
    assert_eq!(messages_of(&fired), vec![good.id]);
    let next: Option<i64> = raw
        .query_row(
            "SELECT next_run_at FROM jobs WHERE id = ?1",
            [bad.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(next, None, "the unreadable job no longer comes due");
    assert_eq!(b.queue.next_job_due_at().await.unwrap(), Some(mins(10)));

    let outcomes = b
        .executions
        .begin_attempts(&[
            start(scheduled_run(&bad, mins(5), 1), mins(5)),
            start(scheduled_run(&good, mins(5), 1), mins(5)),
        ])
        .await
        .unwrap();
    assert!(matches!(
        outcomes[0],
        krafter_shared::ports::BeginOutcome::JobGone
    ));
    assert!(matches!(
        outcomes[1],
        krafter_shared::ports::BeginOutcome::Started(_)
    ));
}

fn messages_of(fired: &[RunMessage]) -> Vec<krafter_shared::domain::JobId> {
    fired.iter().map(|m| m.job_id).collect()
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_and_its_directory_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("krafter-data");
    let path = data.join("krafter.db");
    let db = SqliteDb::open(&path).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&path), 0o600);
    drop(db);
    // An existing file keeps the permissions its owner chose.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    drop(SqliteDb::open(&path).unwrap());
    assert_eq!(mode(&path), 0o640);
}

sqlite_tests! {
    pub async fn a_run_is_not_delivered_before_its_time(b: SqliteBackend) {
        let m = scheduled_run(&interval_job(&team_a()), mins(5), 1);
        b.queue.enqueue(&[(m.clone(), mins(5))]).await.unwrap();

        assert!(
            b.queue
                .dequeue(secs(299), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(mins(5)));
        let due = b.queue.dequeue(mins(5), 10, LEASE).await.unwrap();
        assert_eq!(messages(&due), vec![m]);
    }

    pub async fn sub_second_delivery_times_are_kept(b: SqliteBackend) {
        let m = scheduled_run(&interval_job(&team_a()), mins(5), 1);
        let at = secs(30) + chrono::Duration::milliseconds(500);
        b.queue.enqueue(&[(m.clone(), at)]).await.unwrap();
        assert!(
            b.queue
                .dequeue(secs(30), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(at));
        assert_eq!(
            messages(&b.queue.dequeue(at, 10, LEASE).await.unwrap()),
            vec![m]
        );
    }

    pub async fn a_leased_run_is_not_delivered_again_until_its_lease_ends(b: SqliteBackend) {
        let m = scheduled_run(&interval_job(&team_a()), mins(5), 1);
        b.queue.enqueue(&[(m.clone(), mins(5))]).await.unwrap();

        let first = b.queue.dequeue(mins(5), 10, LEASE).await.unwrap();
        assert_eq!(messages(&first), vec![m.clone()]);
        assert!(
            b.queue
                .dequeue(mins(5), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.queue
                .dequeue(secs(359), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            b.queue.next_delivery_at().await.unwrap(),
            Some(mins(6)),
            "when the lease ends"
        );
        assert_eq!(b.queue.len().await.unwrap(), 1, "leased, not removed");

        // The executor died: the lease ends and the message comes back, same sequence.
        let again = b.queue.dequeue(mins(6), 10, LEASE).await.unwrap();
        assert_eq!(messages(&again), vec![m]);
        assert_eq!(again[0].seq, first[0].seq);
    }

    pub async fn runs_are_delivered_in_delivery_order_up_to_the_limit(b: SqliteBackend) {
        let j = interval_job(&team_a());
        let late = scheduled_run(&j, mins(3), 1);
        let early = scheduled_run(&j, mins(1), 1);
        let middle_a = scheduled_run(&j, mins(2), 1);
        let middle_b = scheduled_run(&j, mins(2), 2);
        b.queue
            .enqueue(&[
                (late.clone(), mins(3)),
                (early.clone(), mins(1)),
                (middle_a.clone(), mins(2)),
            ])
            .await
            .unwrap();
        b.queue
            .enqueue(&[(middle_b.clone(), mins(2))])
            .await
            .unwrap();

        let first = b.queue.dequeue(mins(10), 3, LEASE).await.unwrap();
        assert_eq!(messages(&first), vec![early, middle_a, middle_b]);
        let rest = b.queue.dequeue(mins(10), 3, LEASE).await.unwrap();
        assert_eq!(messages(&rest), vec![late]);
    }

    pub async fn an_acknowledged_run_is_gone(b: SqliteBackend) {
        let j = interval_job(&team_a());
        let done = scheduled_run(&j, mins(5), 1);
        let pending = scheduled_run(&j, mins(10), 1);
        b.queue
            .enqueue(&[(done.clone(), mins(5)), (pending.clone(), mins(10))])
            .await
            .unwrap();

        let taken = b.queue.dequeue(mins(5), 10, LEASE).await.unwrap();
        assert_eq!(messages(&taken), vec![done]);
        b.queue.ack(&[taken[0].seq]).await.unwrap();
        b.queue.ack(&[]).await.unwrap();
        assert_eq!(b.queue.len().await.unwrap(), 1);
        let later = b.queue.dequeue(mins(60), 10, LEASE).await.unwrap();
        assert_eq!(
            messages(&later),
            vec![pending],
            "the acknowledged one never returns"
        );
    }

    pub async fn a_released_run_is_delivered_again_at_the_given_time(b: SqliteBackend) {
        let m = scheduled_run(&interval_job(&team_a()), mins(5), 1);
        b.queue.enqueue(&[(m.clone(), mins(5))]).await.unwrap();
        let taken = b.queue.dequeue(mins(5), 10, LEASE).await.unwrap();

        // Released for later than the lease: the release time wins.
        b.queue.release(taken[0].seq, mins(30)).await.unwrap();
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(mins(30)));
        assert!(
            b.queue
                .dequeue(secs(30 * 60 - 1), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let again = b.queue.dequeue(mins(30), 10, LEASE).await.unwrap();
        assert_eq!(messages(&again), vec![m.clone()]);

        // Released for now: deliverable at once, despite the lease.
        b.queue.release(again[0].seq, mins(30)).await.unwrap();
        assert_eq!(
            messages(&b.queue.dequeue(mins(30), 10, LEASE).await.unwrap()),
            vec![m]
        );
    }

    pub async fn the_next_delivery_time_is_the_earliest_deliverable(b: SqliteBackend) {
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), None);
        assert_eq!(b.queue.len().await.unwrap(), 0);
        let j = interval_job(&team_a());
        b.queue
            .enqueue(&[
                (scheduled_run(&j, mins(20), 1), mins(20)),
                (scheduled_run(&j, mins(5), 1), mins(5)),
            ])
            .await
            .unwrap();
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(mins(5)));
        // Leasing the earliest for an hour makes the other one the next.
        let taken = b
            .queue
            .dequeue(mins(5), 1, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(mins(20)));
        b.queue.ack(&[taken[0].seq]).await.unwrap();
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(mins(20)));
    }

    pub async fn a_due_job_is_claimed_once_with_its_deterministic_run_id(b: SqliteBackend) {
        let j = stored_job(&b).await;
        assert_eq!(j.next_run_at, Some(mins(5)));
        assert_eq!(b.queue.next_job_due_at().await.unwrap(), Some(mins(5)));

        let Claimed { runs: none, due } = b
            .queue
            .claim_due_jobs(secs(299), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!((none.len(), due), (0, 0), "not due yet");

        let now = secs(305);
        let Claimed { runs: fired, due } = b.queue.claim_due_jobs(now, 100, CATCH_UP).await.unwrap();
        let expected = RunMessage {
            team: j.team.clone(),
            job_id: j.id,
            run_id: RunId::scheduled(j.id, mins(5)),
            trigger: Trigger::Schedule,
            scheduled_at: mins(5),
            attempt: 1,
            generation: j.generation,
        };
        assert_eq!(due, 1);
        assert_eq!(fired, vec![expected.clone()]);
        assert_eq!(stored(&b, &j).await.next_run_at, Some(mins(10)));
        assert_eq!(b.queue.next_job_due_at().await.unwrap(), Some(mins(10)));

        // Claiming again at the same time finds nothing: exactly one run.
        let Claimed { runs: again, due } = b.queue.claim_due_jobs(now, 100, CATCH_UP).await.unwrap();
        assert_eq!((again.len(), due), (0, 0));
        assert!(
            b.queue
                .dequeue(secs(304), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            messages(&b.queue.dequeue(now, 10, LEASE).await.unwrap()),
            vec![expected]
        );
        assert_eq!(b.queue.len().await.unwrap(), 1);

        // The next fire time yields the next run.
        let Claimed { runs: next, due: _ } = b
            .queue
            .claim_due_jobs(mins(10), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].run_id, RunId::scheduled(j.id, mins(10)));
        assert_ne!(next[0].run_id, RunId::scheduled(j.id, mins(5)));
    }

    pub async fn a_job_claimed_ahead_is_delivered_at_its_scheduled_time_not_before(b: SqliteBackend) {
        let j = stored_job(&b).await;
        assert_eq!(j.next_run_at, Some(mins(5)));
        let Claimed { runs: none, due } = b
            .queue
            .claim_jobs_due_by(secs(298), secs(299), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!((none.len(), due), (0, 0), "not due by the horizon");

        let Claimed { runs: fired, due } = b
            .queue
            .claim_jobs_due_by(secs(299), secs(300), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!(due, 1);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].run_id, RunId::scheduled(j.id, mins(5)));
        assert_eq!(fired[0].scheduled_at, mins(5));
        assert_eq!(stored(&b, &j).await.next_run_at, Some(mins(10)));
        assert!(
            b.queue
                .dequeue(secs(299), 10, LEASE)
                .await
                .unwrap()
                .is_empty(),
            "queued for its time, not for the claim's"
        );
        assert_eq!(b.queue.next_delivery_at().await.unwrap(), Some(mins(5)));
        assert_eq!(
            messages(&b.queue.dequeue(mins(5), 10, LEASE).await.unwrap()),
            fired
        );
    }

    pub async fn a_run_later_than_the_misfire_grace_is_skipped_but_the_job_advances(b: SqliteBackend) {
        let j = stored_job(&b).await;
        // Down for an hour: the 10:05 run is 60 min late, beyond the grace.
        let now = mins(65);
        let Claimed { runs: fired, due } = b.queue.claim_due_jobs(now, 100, CATCH_UP).await.unwrap();
        assert_eq!(due, 1);
        assert!(fired.is_empty());
        assert_eq!(b.queue.len().await.unwrap(), 0);
        let after = stored(&b, &j).await;
        assert_eq!(
            after.next_run_at,
            Some(mins(70)),
            "the next slot after now, not a replay"
        );
        assert!(after.next_run_at.unwrap() > now);
        assert!(after.enabled);

        // Within the grace it fires.
        let Claimed { runs: fired, due: _ } = b
            .queue
            .claim_due_jobs(mins(71), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].scheduled_at, mins(70));
    }

    pub async fn a_fired_once_job_is_disabled(b: SqliteBackend) {
        let j = job(
            &team_a(),
            json!({
                "name": "Launch",
                "schedule_type": "once",
                "schedule": "2025-01-15T12:00:00Z",
                "url": "https://example.com/launch"
            }),
            t0(),
        );
        b.jobs.insert(&j, QUOTA).await.unwrap();
        let at = mins(120);
        assert_eq!(j.next_run_at, Some(at));

        let Claimed { runs: fired, due: _ } = b
            .queue
            .claim_due_jobs(at + chrono::Duration::seconds(3), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!(fired, vec![scheduled_run(&j, at, 1)]);
        let after = stored(&b, &j).await;
        assert!(!after.enabled);
        assert_eq!(after.next_run_at, None);
        // Disabling itself changes the job's state: its updated_at is the firing's time, as in
        // the hosted backend (`jobs::the_firing_rule_written_back_reads_as_it_was_made`).
        assert_eq!(after.updated_at, at + chrono::Duration::seconds(3));
        assert_eq!(after, j.clone().fire(at, at + chrono::Duration::seconds(3), CATCH_UP).job);
        let Claimed { runs: again, due } = b
            .queue
            .claim_due_jobs(mins(600), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!((again.len(), due), (0, 0));
    }

    pub async fn claiming_a_job_bumps_its_version_so_a_concurrent_update_conflicts(b: SqliteBackend) {
        let j = stored_job(&b).await;
        // The API read the job at version 1...
        let mut edit = j.clone();
        edit.enabled = false;
        edit.generation += 1;
        edit.next_run_at = None;
        edit.version = 2;
        // ...the scheduler claims it meanwhile...
        b.queue
            .claim_due_jobs(mins(5), 100, CATCH_UP)
            .await
            .unwrap();
        let claimed = stored(&b, &j).await;
        assert_eq!(claimed.version, 2);
        // ...so the API's write conflicts, and a retry on the fresh read succeeds.
        assert_eq!(
            b.jobs.update(&edit, 1).await.unwrap(),
            UpdateOutcome::Conflict
        );
        edit.version = 3;
        assert_eq!(
            b.jobs.update(&edit, 2).await.unwrap(),
            UpdateOutcome::Updated
        );
        assert_eq!(stored(&b, &j).await.next_run_at, None);
    }

    pub async fn jobs_without_a_next_run_are_never_claimed(b: SqliteBackend) {
        let paused = job(
            &team_a(),
            json!({
                "name": "Paused",
                "schedule_type": "interval",
                "schedule": "every_5m",
                "url": "https://example.com/p",
                "enabled": false
            }),
            t0(),
        );
        assert_eq!(paused.next_run_at, None);
        b.jobs.insert(&paused, QUOTA).await.unwrap();
        let future = named_job(&team_a(), "later", mins(100));
        b.jobs.insert(&future, QUOTA).await.unwrap();

        let Claimed { runs: fired, due } = b
            .queue
            .claim_due_jobs(mins(60), 100, CATCH_UP)
            .await
            .unwrap();
        assert_eq!((fired.len(), due), (0, 0));
        assert_eq!(&stored(&b, &paused).await, &paused, "untouched");
        assert_eq!(&stored(&b, &future).await, &future, "untouched");
        assert_eq!(b.queue.next_job_due_at().await.unwrap(), Some(mins(105)));
    }

    pub async fn claiming_takes_the_earliest_due_jobs_up_to_the_limit(b: SqliteBackend) {
        let third = named_job(&team_a(), "third", secs(20));
        let first = named_job(&team_b(), "first", secs(0));
        let second = named_job(&team_a(), "second", secs(10));
        for j in [&third, &first, &second] {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        let now = mins(5) + chrono::Duration::seconds(30);
        let Claimed { runs: fired, due } = b.queue.claim_due_jobs(now, 2, CATCH_UP).await.unwrap();
        assert_eq!(due, 2);
        let fired_jobs: Vec<_> = fired.iter().map(|m| m.job_id).collect();
        assert_eq!(fired_jobs, vec![first.id, second.id]);
        assert_eq!(fired[0].team, team_b());
        assert_eq!(
            stored(&b, &third).await.next_run_at,
            third.next_run_at,
            "left for later"
        );

        let Claimed { runs: rest, due } = b.queue.claim_due_jobs(now, 2, CATCH_UP).await.unwrap();
        assert_eq!(due, 1);
        assert_eq!(
            rest.iter().map(|m| m.job_id).collect::<Vec<_>>(),
            vec![third.id]
        );
    }

    pub async fn recovery_releases_every_lease(b: SqliteBackend) {
        let j = interval_job(&team_a());
        let m = scheduled_run(&j, mins(5), 1);
        let waiting = scheduled_run(&j, mins(10), 1);
        b.queue
            .enqueue(&[(m.clone(), mins(5)), (waiting, mins(10))])
            .await
            .unwrap();
        let taken = b
            .queue
            .dequeue(mins(5), 10, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(messages(&taken), vec![m.clone()]);
        assert!(
            b.queue
                .dequeue(mins(6), 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );

        let found = b.queue.recover(mins(6), GRACE).await.unwrap();
        assert_eq!(
            found,
            Recovery {
                leases_released: 1,
                attempts_interrupted: 0,
                missed_runs_skipped: 0,
            }
        );
        let again = b.queue.dequeue(mins(6), 10, LEASE).await.unwrap();
        assert_eq!(messages(&again), vec![m]);
    }

    pub async fn recovery_records_attempts_in_flight_as_interrupted(b: SqliteBackend) {
        let j = stored_job(&b).await;
        let running = start(scheduled_run(&j, mins(5), 1), secs(301));
        let done = start(scheduled_run(&j, mins(5), 2), secs(320));
        b.executions
            .begin_attempts(&[running.clone(), done.clone()])
            .await
            .unwrap();
        b.executions
            .finish_attempts(&[(done.clone(), success(secs(321)))])
            .await
            .unwrap();

        let now = secs(331);
        let found = b.queue.recover(now, GRACE).await.unwrap();
        assert_eq!(
            found,
            Recovery {
                leases_released: 0,
                attempts_interrupted: 1,
                missed_runs_skipped: 0,
            }
        );

        let interrupted = record(b.executions.as_ref(), &j, running.execution_id())
            .await
            .unwrap();
        let outcome = interrupted.outcome.clone().expect("no longer in flight");
        assert_eq!(outcome, AttemptOutcome::interrupted(secs(301), now));
        assert_eq!(outcome.status, RunStatus::Failed);
        assert_eq!(outcome.duration_ms, 30_000);
        assert!(outcome.error.as_deref().unwrap().starts_with("interrupted"));
        let untouched = record(b.executions.as_ref(), &j, done.execution_id())
            .await
            .unwrap();
        assert_eq!(untouched.outcome, Some(success(secs(321))));

        // The redelivered message never sends the attempt again.
        let redelivered = start(scheduled_run(&j, mins(5), 1), secs(340));
        let out = b.executions.begin_attempts(&[redelivered]).await.unwrap();
        assert_eq!(expect_already_recorded(&out[0]), &interrupted);
        assert_eq!(
            b.queue.recover(secs(400), GRACE).await.unwrap(),
            Recovery::default(),
            "idempotent"
        );
    }

    pub async fn recovery_skips_scheduled_runs_missed_while_the_service_was_down(b: SqliteBackend) {
        let j = stored_job(&b).await;
        let missed = scheduled_run(&j, mins(5), 1);
        let recent = scheduled_run(&j, mins(30), 1);
        let retry = scheduled_run(&j, mins(5), 2);
        let manual = RunMessage {
            trigger: Trigger::Manual,
            run_id: RunId::new(),
            ..scheduled_run(&j, mins(5), 1)
        };
        let started = scheduled_run(&j, mins(6), 1);
        b.queue
            .enqueue(&[
                (missed, mins(5)),
                (recent.clone(), mins(30)),
                (retry.clone(), mins(5)),
                (manual.clone(), mins(5)),
                (started.clone(), mins(6)),
            ])
            .await
            .unwrap();
        // `started` was in flight when the service stopped: it is settled, not skipped.
        b.executions
            .begin_attempts(&[start(started.clone(), mins(6))])
            .await
            .unwrap();

        // Back up at 10:30:30: the 10:05 scheduled run was missed; the 10:30 one was not.
        let found = b
            .queue
            .recover(mins(30) + chrono::Duration::seconds(30), GRACE)
            .await
            .unwrap();
        assert_eq!(found.missed_runs_skipped, 1);
        let mut left = messages(&b.queue.dequeue(mins(31), 10, LEASE).await.unwrap());
        left.sort_by_key(|m| (m.scheduled_at, m.attempt, m.trigger.as_str()));
        let mut expected = vec![manual, retry, started, recent];
        expected.sort_by_key(|m| (m.scheduled_at, m.attempt, m.trigger.as_str()));
        assert_eq!(left, expected);
    }

    pub async fn deleting_a_job_drops_its_queued_runs(b: SqliteBackend) {
        let doomed = stored_job(&b).await;
        let kept = stored_job(&b).await;
        b.queue
            .enqueue(&[
                (scheduled_run(&doomed, mins(5), 1), mins(5)),
                (scheduled_run(&kept, mins(5), 1), mins(5)),
                (scheduled_run(&doomed, mins(10), 1), mins(10)),
            ])
            .await
            .unwrap();
        assert!(b.jobs.delete(&team_a(), doomed.id).await.unwrap());
        let left = b.queue.dequeue(mins(60), 10, LEASE).await.unwrap();
        assert_eq!(messages(&left), vec![scheduled_run(&kept, mins(5), 1)]);
    }

    /// The embedded scheduler fires exactly a job's upcoming runs (the preview engine), across
    /// a DST change: claimed one after the other, each at its time.
    pub async fn the_runs_claimed_are_the_jobs_upcoming_runs(b: SqliteBackend) {
        let created = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 27, 12, 0, 0).unwrap();
        let j = job(
            &team_a(),
            json!({"name": "dst", "schedule_type": "cron", "schedule": "30 2 * * *",
                   "timezone": "Europe/Berlin", "url": "https://example.com/"}),
            created,
        );
        b.jobs.insert(&j, QUOTA).await.unwrap();
        let upcoming: Vec<_> = j.upcoming(4).iter().map(|r| r.scheduled_at).collect();
        assert_eq!(upcoming, j.spec.schedule.upcoming(created, 4), "the preview of a new job");
        let mut fired = Vec::new();
        for _ in 0..4 {
            let at = stored(&b, &j).await.next_run_at.unwrap();
            let Claimed { runs, .. } = b.queue.claim_due_jobs(at, 10, CATCH_UP).await.unwrap();
            fired.extend(runs.iter().map(|r| r.scheduled_at));
        }
        assert_eq!(fired, upcoming);
    }

    pub async fn a_jobs_catch_up_window_starts_its_most_recent_missed_run_late(b: SqliteBackend) {
        let mut j = interval_job(&team_a()); // every 5 minutes, first run at 10:05
        j.spec.firing.catch_up = Some(krafter_shared::domain::CatchUpWindow::parse(600).unwrap());
        b.jobs.insert(&j, QUOTA).await.unwrap();
        // Down from before 10:05 until 10:27: 10:05 .. 10:25 were missed.
        let Claimed { runs, .. } = b.queue.claim_due_jobs(mins(27), 10, CATCH_UP).await.unwrap();
        assert_eq!(runs, vec![scheduled_run(&j, mins(25), 1)], "the latest, once, late");
        assert_eq!(stored(&b, &j).await.next_run_at, Some(mins(30)));
        let taken = b.queue.dequeue(mins(27), 10, LEASE).await.unwrap();
        b.queue.ack(&taken.iter().map(|d| d.seq).collect::<Vec<_>>()).await.unwrap();

        // Recovery keeps a queued run inside the job's window (the grace alone would not).
        let queued = scheduled_run(&j, mins(30), 1);
        b.queue.enqueue(&[(queued.clone(), mins(30))]).await.unwrap();
        let found = b.queue.recover(mins(35), GRACE).await.unwrap();
        assert_eq!(found.missed_runs_skipped, 0);
        assert_eq!(messages(&b.queue.dequeue(mins(35), 10, LEASE).await.unwrap()), vec![queued]);
    }

    /// A jittered run is claimed at its time and queued for the time it fires (`next_run_at`
    /// as the API shows it, the job's first upcoming `fires_at`), not before.
    pub async fn a_jittered_run_is_queued_for_the_time_it_fires(b: SqliteBackend) {
        let mut j = interval_job(&team_a()); // every 5 minutes, first run at 10:05
        j.spec.firing.jitter = krafter_shared::domain::Jitter::parse(120).unwrap();
        b.jobs.insert(&j, QUOTA).await.unwrap();
        let fires = j.fires_at(mins(5));
        let upcoming = j.upcoming(1)[0];
        assert_eq!(upcoming.fires, krafter_shared::domain::FireTime::At(fires));
        assert!(fires >= mins(5) && fires <= mins(7), "{fires}");
        let Claimed { runs, .. } = b.queue.claim_due_jobs(mins(5), 10, CATCH_UP).await.unwrap();
        assert_eq!(runs, vec![scheduled_run(&j, mins(5), 1)], "with its own scheduled time");
        if fires > mins(5) {
            let early = fires - chrono::Duration::seconds(1);
            assert!(b.queue.dequeue(early, 10, LEASE).await.unwrap().is_empty(), "not before");
        }
        assert_eq!(messages(&b.queue.dequeue(fires, 10, LEASE).await.unwrap()), runs);
    }
}
