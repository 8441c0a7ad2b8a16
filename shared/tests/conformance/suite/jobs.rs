//! `JobStore` conformance.

use krafter_shared::domain::{
    Body, CatchUp, HeaderList, Job, JobId, RunStatus, TeamId, parse_job_patch,
};
use krafter_shared::ports::{InsertOutcome, PageRequest, RecordedRun, RunResult, UpdateOutcome};
use serde_json::json;

use crate::backend::Backend;
use crate::fixtures::*;

fn result(job: &Job, at_min: i64, status: RunStatus) -> RunResult {
    RunResult {
        team: job.team.clone(),
        job_id: job.id,
        run_id: krafter_shared::domain::RunId::scheduled(job.id, mins(at_min)),
        scheduled_at: mins(at_min),
        status,
        streak: krafter_shared::domain::StreakChange::of(status),
    }
}

/// Jobs of every schedule kind and every optional field both ways, with state set.
fn varied_jobs() -> Vec<Job> {
    let team = team_a();
    let mut cron = job(
        &team,
        json!({
            "name": "Nightly report — Zürich ✓",
            "schedule_type": "cron",
            "schedule": "*/15 9-17 * * 1-5",
            "timezone": "Europe/Berlin",
            "url": "https://Example.com:8443/hook?x=1&y=%20z",
            "method": "POST",
            "body": "{\"hello\": \"wörld\"}\n",
            "timeout_ms": 5000,
            "max_retries": 0,
            "failure_notify": true,
            "retry_backoff": "exponential",
            "retry_base_ms": 250,
            "retry_max_ms": 90000,
            "expect_status": ["2xx", "404", "3XX"],
            "expect_body": "\"status\":\\s*\"ok\"|ünïcode"
        }),
        t0(),
    );
    // Insertion order, not alphabetical: the order the user wrote them in.
    cron.spec.request.headers = HeaderList::parse(vec![
        ("X-Zeta".to_owned(), "last letter".to_owned()),
        ("Authorization".to_owned(), "Bearer abc.def".to_owned()),
        ("x-middle".to_owned(), "".to_owned()),
    ])
    .unwrap();
    cron.generation = 3;
    cron.version = 9;
    cron.last_status = Some(RunStatus::Failed);
    cron.last_run_at = Some(mins(-15));
    cron.updated_at = mins(1);

    let mut paused = job(
        &team,
        json!({
            "name": "Every half minute",
            "schedule_type": "interval",
            "schedule": "every_30s",
            "timezone": "America/New_York",
            "url": "http://127.0.0.1:9/x",
            "enabled": false
        }),
        t0(),
    );
    assert_eq!(paused.next_run_at, None);
    paused.last_status = Some(RunStatus::Success);
    paused.last_run_at = Some(mins(-1));

    let once = job(
        &team,
        json!({
            "name": "Launch",
            "schedule_type": "once",
            "schedule": "2025-03-01T12:00:00+01:00",
            "timezone": "Asia/Tokyo",
            "url": "https://example.com/launch",
            "method": "HEAD"
        }),
        t0(),
    );
    assert!(once.next_run_at.is_some());

    // An empty body is not an absent one.
    let daily = job(
        &team,
        json!({
            "name": "Daily",
            "schedule_type": "cron",
            "schedule": "@daily",
            "url": "https://example.com/daily",
            "method": "PUT",
            "body": ""
        }),
        t0(),
    );
    assert_eq!(
        daily.spec.request.body,
        Some(Body::parse(String::new()).unwrap())
    );

    // Every limit at its maximum.
    let headers: serde_json::Map<String, serde_json::Value> = (0..50)
        .map(|i| (format!("X-H{i:02}"), json!("v".repeat(100))))
        .collect();
    let big = job(
        &team,
        json!({
            "name": "é".repeat(200),
            "schedule_type": "interval",
            "schedule": "every_365d",
            "url": format!("https://example.com/{}", "a".repeat(2000)),
            "method": "PATCH",
            "headers": headers,
            "body": "b".repeat(65_536),
            "timeout_ms": 300_000,
            "max_retries": 10
        }),
        t0(),
    );
    assert_eq!(big.spec.request.headers.len(), 50);

    vec![cron, paused, once, daily, big]
}

/// `n` jobs of `team` created a minute apart, oldest first.
fn jobs_over_time(team: &TeamId, n: i64) -> Vec<Job> {
    (0..n)
        .map(|i| named_job(team, &format!("job {i}"), mins(i)))
        .collect()
}

conformance_tests! {
    pub async fn run_ends_keep_the_failure_streak_and_count_a_run_once(b: Backend) {
        let j = interval_job(&team_a());
        b.jobs.insert(&j, QUOTA).await.unwrap();
        let streaks = async |results: &[RunResult]| -> Vec<Option<u32>> {
            b.jobs
                .record_run_results(results)
                .await
                .unwrap()
                .into_iter()
                .map(|r| match r {
                    RecordedRun::Applied { previous_failures, .. } => Some(previous_failures),
                    RecordedRun::Ignored => None,
                })
                .collect()
        };
        let failed = |m| result(&j, m, RunStatus::Failed);
        assert_eq!(streaks(&[failed(1), failed(2), failed(3)]).await, [Some(0), Some(1), Some(2)]);
        // The same run delivered again is not counted twice; nor is an older one.
        assert_eq!(streaks(&[failed(3), failed(2)]).await, [None, None]);
        assert_eq!(b.jobs.get(&team_a(), j.id).await.unwrap().unwrap().consecutive_failures, 3);
        // Another run in the same second is another run.
        let mut manual = failed(3);
        manual.run_id = krafter_shared::domain::RunId::new();
        assert_eq!(streaks(&[manual]).await, [Some(3)]);
        assert_eq!(streaks(&[result(&j, 4, RunStatus::Success)]).await, [Some(4)]);
        let stored = b.jobs.get(&team_a(), j.id).await.unwrap().unwrap();
        assert_eq!(stored.consecutive_failures, 0);
        assert_eq!(stored.last_status, Some(RunStatus::Success));
    }

    pub async fn a_filtered_list_pages_through_sparse_matches_each_once(b: Backend) {
        // 300 jobs, every 37th tagged: matches are far apart, across the stores' chunks.
        let rare = krafter_shared::domain::Tag::parse("rare").unwrap();
        let mut wanted = Vec::new();
        for (i, mut j) in jobs_over_time(&team_a(), 300).into_iter().enumerate() {
            if i % 37 == 5 {
                j.spec.tags = krafter_shared::domain::Tags::parse(&["rare".to_owned()]).unwrap();
                wanted.push(j.id);
            }
            b.jobs.insert(&j, QUOTA).await.unwrap();
        }
        wanted.reverse(); // newest first
        let filter = krafter_shared::domain::JobFilter {
            tags: vec![rare],
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = b
                .jobs
                .list(&team_a(), PageRequest { limit: Some(3), after }, &filter)
                .await
                .unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(page.items.iter().map(|j| j.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, wanted);
        let unfiltered = b
            .jobs
            .list(&team_a(), PageRequest::first(5), &Default::default())
            .await
            .unwrap();
        assert_eq!(unfiltered.items.len(), 5);
    }

    pub async fn every_field_of_a_job_round_trips(b: Backend) {
        let jobs = varied_jobs();
        for j in &jobs {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        for j in &jobs {
            let stored = b
                .jobs
                .get(&j.team, j.id)
                .await
                .unwrap()
                .expect("the job is stored");
            assert_eq!(&stored, j);
            let order: Vec<(&str, &str)> = stored.spec.request.headers.iter().collect();
            let expected: Vec<(&str, &str)> = j.spec.request.headers.iter().collect();
            assert_eq!(order, expected, "headers keep their order");
        }
        let listed = b.jobs.list(&team_a(), PageRequest::all(), &Default::default()).await.unwrap();
        assert_eq!(listed.items.len(), jobs.len());
        for stored in &listed.items {
            let original = jobs
                .iter()
                .find(|j| j.id == stored.id)
                .expect("a listed job was inserted");
            assert_eq!(stored, original, "list returns every field too");
        }
    }

    pub async fn an_unknown_job_is_not_found(b: Backend) {
        b.jobs.insert(&interval_job(&team_a()), QUOTA).await.unwrap();
        assert!(b.jobs.get(&team_a(), JobId::new()).await.unwrap().is_none());
    }

    pub async fn a_job_of_another_team_is_invisible(b: Backend) {
        let mine = interval_job(&team_a());
        b.jobs.insert(&mine, QUOTA).await.unwrap();

        assert!(b.jobs.get(&team_b(), mine.id).await.unwrap().is_none());
        let page = b.jobs.list(&team_b(), PageRequest::all(), &Default::default()).await.unwrap();
        assert!(page.items.is_empty());
        assert!(page.next.is_none());
        assert_eq!(b.jobs.count(&team_b()).await.unwrap(), 0);
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 1);
        assert!(b.jobs.get(&team_a(), mine.id).await.unwrap().is_some());
    }

    pub async fn a_teams_job_count_follows_its_creates_and_deletes(b: Backend) {
        let mine: Vec<Job> = (0..3).map(|_| interval_job(&team_a())).collect();
        for j in &mine {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        b.jobs.insert(&interval_job(&team_b()), QUOTA).await.unwrap();
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 3);
        assert_eq!(b.jobs.count(&team_b()).await.unwrap(), 1);

        assert!(b.jobs.delete(&team_a(), mine[0].id).await.unwrap());
        assert!(!b.jobs.delete(&team_a(), mine[0].id).await.unwrap());
        assert!(!b.jobs.delete(&team_b(), mine[1].id).await.unwrap());
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 2);
        assert_eq!(b.jobs.count(&team_b()).await.unwrap(), 1);
    }

    pub async fn the_job_quota_is_exact_under_concurrent_inserts(b: Backend) {
        let jobs = b.jobs.clone();
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let jobs = jobs.clone();
                let j = named_job(&team_a(), &format!("job {i}"), t0());
                tokio::spawn(async move { jobs.insert(&j, 5).await.unwrap() })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            if t.await.unwrap() == InsertOutcome::Inserted {
                inserted += 1;
            }
        }
        assert_eq!(inserted, 5);
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 5);
        let listed = b.jobs.list(&team_a(), PageRequest::all(), &Default::default()).await.unwrap();
        assert_eq!(listed.items.len(), 5);
    }

    pub async fn an_insert_over_the_quota_writes_nothing(b: Backend) {
        let first = interval_job(&team_a());
        assert_eq!(b.jobs.insert(&first, 1).await.unwrap(), InsertOutcome::Inserted);
        let second = interval_job(&team_a());
        assert_eq!(
            b.jobs.insert(&second, 1).await.unwrap(),
            InsertOutcome::QuotaExceeded
        );
        assert!(b.jobs.get(&team_a(), second.id).await.unwrap().is_none());
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 1);
        // Another team has a quota of its own.
        let theirs = interval_job(&team_b());
        assert_eq!(b.jobs.insert(&theirs, 1).await.unwrap(), InsertOutcome::Inserted);
    }

    pub async fn deleting_a_job_frees_its_place_in_the_quota(b: Backend) {
        let first = interval_job(&team_a());
        b.jobs.insert(&first, 1).await.unwrap();
        assert!(b.jobs.delete(&team_a(), first.id).await.unwrap());
        let again = interval_job(&team_a());
        assert_eq!(b.jobs.insert(&again, 1).await.unwrap(), InsertOutcome::Inserted);
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 1);
    }

    pub async fn the_firing_rule_written_back_reads_as_it_was_made(b: Backend) {
        // The hosted executor writes a fired job back through `update`; the embedded scheduler
        // through its claim (`sqlite::a_fired_once_job_is_disabled`). Both must store what
        // `Job::fire` made, `updated_at` included.
        let once = job(
            &team_a(),
            json!({"name": "Launch", "schedule_type": "once",
                   "schedule": "2025-01-15T12:00:00Z", "url": "https://example.com/launch"}),
            t0(),
        );
        let recurring = interval_job(&team_a());
        for j in [once, recurring] {
            b.jobs.insert(&j, QUOTA).await.unwrap();
            let at = j.next_run_at.unwrap();
            let fired = j.clone().fire(at, at + chrono::Duration::seconds(2), CatchUp::Always).job;
            assert_eq!(b.jobs.update(&fired, j.version).await.unwrap(), UpdateOutcome::Updated);
            assert_eq!(b.jobs.get(&team_a(), j.id).await.unwrap().unwrap(), fired);
        }
    }

    pub async fn another_team_cannot_update_a_job(b: Backend) {
        let mine = interval_job(&team_a());
        b.jobs.insert(&mine, QUOTA).await.unwrap();

        let mut theirs = mine.clone();
        theirs.team = team_b();
        theirs.enabled = false;
        theirs.next_run_at = None;
        theirs.version = 2;
        assert_eq!(
            b.jobs.update(&theirs, 1).await.unwrap(),
            UpdateOutcome::NotFound
        );

        let stored = b.jobs.get(&team_a(), mine.id).await.unwrap().unwrap();
        assert_eq!(&stored, &mine);
        assert!(b.jobs.get(&team_b(), mine.id).await.unwrap().is_none());
    }

    pub async fn another_team_cannot_delete_a_job(b: Backend) {
        let mine = interval_job(&team_a());
        b.jobs.insert(&mine, QUOTA).await.unwrap();

        assert!(!b.jobs.delete(&team_b(), mine.id).await.unwrap());
        assert!(b.jobs.get(&team_a(), mine.id).await.unwrap().is_some());
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 1);
    }

    pub async fn jobs_are_listed_newest_first(b: Backend) {
        let jobs = jobs_over_time(&team_a(), 5);
        let others = jobs_over_time(&team_b(), 3);
        // Stored out of order, and interleaved with another team's.
        for i in [3, 0, 4, 1, 2] {
            b.jobs.insert(&jobs[i], QUOTA).await.unwrap();
            if let Some(o) = others.get(i) {
                b.jobs.insert(o, QUOTA).await.unwrap();
            }
        }
        let page = b.jobs.list(&team_a(), PageRequest::all(), &Default::default()).await.unwrap();
        let mut newest_first = ids(&jobs);
        newest_first.reverse();
        assert_eq!(ids(&page.items), newest_first);
        assert!(page.next.is_none());
    }

    pub async fn paging_through_jobs_returns_each_exactly_once(b: Backend) {
        let jobs = jobs_over_time(&team_a(), 7);
        for j in &jobs {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        b.jobs.insert(&interval_job(&team_b()), QUOTA).await.unwrap();

        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut after = None;
        loop {
            let page = b
                .jobs
                .list(
                    &team_a(),
                    PageRequest {
                        limit: Some(3),
                        after,
                    },
                    &Default::default(),
                )
                .await
                .unwrap();
            sizes.push(page.items.len());
            seen.extend(ids(&page.items));
            match page.next {
                Some(cursor) => {
                    assert_eq!(
                        Some(&cursor),
                        seen.last(),
                        "the cursor is the page's last job"
                    );
                    after = Some(cursor);
                }
                None => break,
            }
            assert!(sizes.len() < 10, "paging does not end");
        }
        let mut newest_first = ids(&jobs);
        newest_first.reverse();
        assert_eq!(seen, newest_first);
        assert_eq!(sizes, vec![3, 3, 1]);
    }

    pub async fn a_full_last_page_has_no_next_cursor(b: Backend) {
        let jobs = jobs_over_time(&team_a(), 4);
        for j in &jobs {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        let first = b.jobs.list(&team_a(), PageRequest::first(2), &Default::default()).await.unwrap();
        assert_eq!(ids(&first.items), vec![jobs[3].id, jobs[2].id]);
        assert_eq!(first.next, Some(jobs[2].id));
        let second = b
            .jobs
            .list(
                &team_a(),
                PageRequest {
                    limit: Some(2),
                    after: first.next,
                },
                &Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(ids(&second.items), vec![jobs[1].id, jobs[0].id]);
        assert_eq!(second.next, None, "nothing follows");

        let all_in_one = b.jobs.list(&team_a(), PageRequest::first(4), &Default::default()).await.unwrap();
        assert_eq!(all_in_one.items.len(), 4);
        assert_eq!(all_in_one.next, None);
        let larger = b
            .jobs
            .list(&team_a(), PageRequest::first(100), &Default::default())
            .await
            .unwrap();
        assert_eq!(larger.items.len(), 4);
        assert_eq!(larger.next, None);
    }

    pub async fn a_list_without_a_limit_returns_every_job(b: Backend) {
        let jobs = jobs_over_time(&team_a(), 30);
        for j in &jobs {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        let page = b.jobs.list(&team_a(), PageRequest::all(), &Default::default()).await.unwrap();
        assert_eq!(page.items.len(), 30);
        assert_eq!(page.next, None);
        let rest = b
            .jobs
            .list(
                &team_a(),
                PageRequest {
                    limit: None,
                    after: Some(jobs[10].id),
                },
                &Default::default(),
            )
            .await
            .unwrap();
        let mut expected = ids(&jobs[..10]);
        expected.reverse();
        assert_eq!(ids(&rest.items), expected, "after is exclusive");
        assert_eq!(rest.next, None);
    }

    pub async fn count_counts_only_the_teams_jobs(b: Backend) {
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 0);
        for j in jobs_over_time(&team_a(), 3) {
            b.jobs.insert(&j, QUOTA).await.unwrap();
        }
        for j in jobs_over_time(&team_b(), 2) {
            b.jobs.insert(&j, QUOTA).await.unwrap();
        }
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 3);
        assert_eq!(b.jobs.count(&team_b()).await.unwrap(), 2);
    }

    pub async fn an_update_at_the_expected_version_writes_definition_and_state(b: Backend) {
        let original = interval_job(&team_a());
        b.jobs.insert(&original, QUOTA).await.unwrap();

        let mut changed = original.clone();
        let patch = parse_job_patch(
            &draft(json!({
                "name": "Renamed",
                "schedule_type": "cron",
                "schedule": "30 8 * * *",
                "timezone": "Australia/Sydney",
                "url": "https://example.org/new",
                "method": "DELETE",
                "headers": {"X-New": "1"},
                "body": "gone",
                "timeout_ms": 1000,
                "max_retries": 7,
                "failure_notify": true
            })),
            &original.spec,
            mins(3),
        )
        .unwrap();
        changed.spec = patch.spec;
        changed.enabled = false;
        changed.generation = 1;
        changed.next_run_at = None;
        changed.version = 2;
        changed.updated_at = mins(3);
        assert_eq!(
            b.jobs.update(&changed, 1).await.unwrap(),
            UpdateOutcome::Updated
        );

        let stored = b.jobs.get(&team_a(), original.id).await.unwrap().unwrap();
        assert_eq!(&stored, &changed);
        assert_eq!(stored.version, 2);
        assert_eq!(stored.created_at, original.created_at);

        // And back: enabled with a next run again.
        let mut resumed = stored.clone();
        resumed.enabled = true;
        resumed.next_run_at = Some(mins(20));
        resumed.version = 3;
        resumed.updated_at = mins(4);
        assert_eq!(
            b.jobs.update(&resumed, 2).await.unwrap(),
            UpdateOutcome::Updated
        );
        let stored = b.jobs.get(&team_a(), original.id).await.unwrap().unwrap();
        assert_eq!(&stored, &resumed);
    }

    pub async fn an_update_with_a_stale_version_conflicts_and_changes_nothing(b: Backend) {
        let original = interval_job(&team_a());
        b.jobs.insert(&original, QUOTA).await.unwrap();

        let mut first = original.clone();
        first.enabled = false;
        first.generation = 1;
        first.next_run_at = None;
        first.version = 2;
        assert_eq!(
            b.jobs.update(&first, 1).await.unwrap(),
            UpdateOutcome::Updated
        );

        // A writer that read version 1 too.
        let mut late = original.clone();
        late.spec.max_retries = krafter_shared::domain::MaxRetries::parse(9).unwrap();
        late.version = 2;
        assert_eq!(
            b.jobs.update(&late, 1).await.unwrap(),
            UpdateOutcome::Conflict
        );
        // Or guessed a version ahead.
        assert_eq!(
            b.jobs.update(&late, 3).await.unwrap(),
            UpdateOutcome::Conflict
        );

        let stored = b.jobs.get(&team_a(), original.id).await.unwrap().unwrap();
        assert_eq!(&stored, &first);
    }

    pub async fn an_update_of_a_missing_job_is_not_found(b: Backend) {
        let never_stored = interval_job(&team_a());
        assert_eq!(
            b.jobs.update(&never_stored, 1).await.unwrap(),
            UpdateOutcome::NotFound
        );

        let deleted = interval_job(&team_a());
        b.jobs.insert(&deleted, QUOTA).await.unwrap();
        assert!(b.jobs.delete(&team_a(), deleted.id).await.unwrap());
        assert_eq!(
            b.jobs.update(&deleted, 1).await.unwrap(),
            UpdateOutcome::NotFound
        );
        assert!(
            b.jobs.get(&team_a(), deleted.id).await.unwrap().is_none(),
            "no upsert"
        );
    }

    pub async fn an_update_never_touches_the_run_status(b: Backend) {
        let original = interval_job(&team_a());
        b.jobs.insert(&original, QUOTA).await.unwrap();
        let applied = b
            .jobs
            .record_run_results(&[result(&original, 5, RunStatus::Failed)])
            .await
            .unwrap();
        assert_eq!(applied, vec![RecordedRun::Applied {
                previous: None,
                previous_failures: 0,
            }]);

        // Read before the run ended: no status.
        let mut stale_status = original.clone();
        stale_status.spec.failure_notify = true;
        stale_status.version = 2;
        assert_eq!(
            b.jobs.update(&stale_status, 1).await.unwrap(),
            UpdateOutcome::Updated
        );
        let stored = b.jobs.get(&team_a(), original.id).await.unwrap().unwrap();
        assert!(stored.spec.failure_notify);
        assert_eq!(stored.last_status, Some(RunStatus::Failed));
        assert_eq!(stored.last_run_at, Some(mins(5)));

        // A status of its own is not written either.
        let mut other_status = stored.clone();
        other_status.last_status = Some(RunStatus::Success);
        other_status.last_run_at = Some(mins(50));
        other_status.version = 3;
        assert_eq!(
            b.jobs.update(&other_status, 2).await.unwrap(),
            UpdateOutcome::Updated
        );
        let stored = b.jobs.get(&team_a(), original.id).await.unwrap().unwrap();
        assert_eq!(stored.last_status, Some(RunStatus::Failed));
        assert_eq!(stored.last_run_at, Some(mins(5)));
        assert_eq!(stored.version, 3);
    }

    pub async fn deleting_a_job_removes_it_once(b: Backend) {
        let doomed = interval_job(&team_a());
        let kept = interval_job(&team_a());
        b.jobs.insert(&doomed, QUOTA).await.unwrap();
        b.jobs.insert(&kept, QUOTA).await.unwrap();

        assert!(b.jobs.delete(&team_a(), doomed.id).await.unwrap());
        assert!(b.jobs.get(&team_a(), doomed.id).await.unwrap().is_none());
        assert!(
            !b.jobs.delete(&team_a(), doomed.id).await.unwrap(),
            "already gone"
        );
        assert_eq!(b.jobs.count(&team_a()).await.unwrap(), 1);
        let page = b.jobs.list(&team_a(), PageRequest::all(), &Default::default()).await.unwrap();
        assert_eq!(ids(&page.items), vec![kept.id]);
    }

    pub async fn deleting_a_missing_job_returns_false(b: Backend) {
        assert!(!b.jobs.delete(&team_a(), JobId::new()).await.unwrap());
    }

    pub async fn recording_a_run_result_returns_the_previous_status(b: Backend) {
        let j = interval_job(&team_a());
        b.jobs.insert(&j, QUOTA).await.unwrap();

        let first = b
            .jobs
            .record_run_results(&[result(&j, 5, RunStatus::Failed)])
            .await
            .unwrap();
        assert_eq!(
            first,
            vec![RecordedRun::Applied {
                previous: None,
                previous_failures: 0,
            }],
            "applied; there was no status before"
        );
        let stored = b.jobs.get(&team_a(), j.id).await.unwrap().unwrap();
        assert_eq!(stored.last_status, Some(RunStatus::Failed));
        assert_eq!(stored.last_run_at, Some(mins(5)));

        let second = b
            .jobs
            .record_run_results(&[result(&j, 10, RunStatus::Success)])
            .await
            .unwrap();
        assert_eq!(second, vec![RecordedRun::Applied {
                previous: Some(RunStatus::Failed),
                previous_failures: 1,
            }]);
        let stored = b.jobs.get(&team_a(), j.id).await.unwrap().unwrap();
        assert_eq!(stored.last_status, Some(RunStatus::Success));
        assert_eq!(stored.last_run_at, Some(mins(10)));
        assert_eq!(
            stored.spec.request, j.spec.request,
            "the definition is untouched"
        );
    }

    pub async fn an_older_run_result_is_ignored(b: Backend) {
        let j = interval_job(&team_a());
        b.jobs.insert(&j, QUOTA).await.unwrap();
        b.jobs
            .record_run_results(&[result(&j, 10, RunStatus::Success)])
            .await
            .unwrap();

        let late = b
            .jobs
            .record_run_results(&[result(&j, 5, RunStatus::Failed)])
            .await
            .unwrap();
        assert_eq!(late, vec![RecordedRun::Ignored]);
        let stored = b.jobs.get(&team_a(), j.id).await.unwrap().unwrap();
        assert_eq!(stored.last_status, Some(RunStatus::Success));
        assert_eq!(stored.last_run_at, Some(mins(10)));
    }

    pub async fn a_run_result_for_a_deleted_job_returns_none(b: Backend) {
        let j = interval_job(&team_a());
        b.jobs.insert(&j, QUOTA).await.unwrap();
        b.jobs.delete(&team_a(), j.id).await.unwrap();

        let out = b
            .jobs
            .record_run_results(&[result(&j, 5, RunStatus::Failed)])
            .await
            .unwrap();
        assert_eq!(out, vec![RecordedRun::Ignored]);
        assert!(
            b.jobs.get(&team_a(), j.id).await.unwrap().is_none(),
            "not recreated"
        );
    }

    pub async fn a_run_result_naming_another_team_is_not_applied(b: Backend) {
        let j = interval_job(&team_a());
        b.jobs.insert(&j, QUOTA).await.unwrap();
        let mut foreign = result(&j, 5, RunStatus::Failed);
        foreign.team = team_b();

        assert_eq!(
            b.jobs.record_run_results(&[foreign]).await.unwrap(),
            vec![RecordedRun::Ignored]
        );
        let stored = b.jobs.get(&team_a(), j.id).await.unwrap().unwrap();
        assert_eq!(stored.last_status, None);
        assert_eq!(stored.last_run_at, None);
    }

    pub async fn run_results_are_recorded_as_a_batch_in_order(b: Backend) {
        let one = interval_job(&team_a());
        let two = interval_job(&team_b());
        b.jobs.insert(&one, QUOTA).await.unwrap();
        b.jobs.insert(&two, QUOTA).await.unwrap();
        let missing = interval_job(&team_a());

        let out = b
            .jobs
            .record_run_results(&[
                result(&one, 10, RunStatus::Success),
                result(&two, 10, RunStatus::Failed),
                result(&missing, 10, RunStatus::Failed),
                result(&one, 15, RunStatus::Failed),
                result(&two, 5, RunStatus::Success),
            ])
            .await
            .unwrap();
        assert_eq!(
            out,
            vec![
                RecordedRun::Applied {
                previous: None,
                previous_failures: 0,
            },
                RecordedRun::Applied {
                previous: None,
                previous_failures: 0,
            },
                RecordedRun::Ignored,
                RecordedRun::Applied {
                    previous: Some(RunStatus::Success),
                    previous_failures: 0,
                },
                RecordedRun::Ignored,
            ]
        );
        let one = b.jobs.get(&team_a(), one.id).await.unwrap().unwrap();
        assert_eq!(
            (one.last_status, one.last_run_at),
            (Some(RunStatus::Failed), Some(mins(15)))
        );
        let two = b.jobs.get(&team_b(), two.id).await.unwrap().unwrap();
        assert_eq!(
            (two.last_status, two.last_run_at),
            (Some(RunStatus::Failed), Some(mins(10)))
        );
        assert!(b.jobs.record_run_results(&[]).await.unwrap().is_empty());
    }

    pub async fn scanning_visits_every_job_of_every_team_exactly_once(b: Backend) {
        let mut stored = jobs_over_time(&team_a(), 5);
        stored.extend(jobs_over_time(&team_b(), 4));
        for j in &stored {
            b.jobs.insert(j, QUOTA).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = b
                .jobs
                .scan(PageRequest {
                    limit: Some(2),
                    after,
                })
                .await
                .unwrap();
            pages += 1;
            assert!(page.items.len() <= 2, "a page holds at most the limit");
            seen.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
            assert!(pages < 50, "the scan ends");
        }
        let mut seen_ids = ids(&seen);
        let mut want = ids(&stored);
        seen_ids.sort();
        want.sort();
        assert_eq!(seen_ids, want);
        for j in &stored {
            assert_eq!(seen.iter().find(|s| s.id == j.id), Some(j), "scanned whole");
        }
    }

    pub async fn scanning_an_empty_store_finds_nothing(b: Backend) {
        let page = b.jobs.scan(PageRequest::first(10)).await.unwrap();
        assert!(page.items.is_empty());
        assert!(page.next.is_none());
    }
}
