//! Scenarios written once and run against both backends: the embedded server
//! (`endpoints.rs`) and the hosted router on moto (`hosted.rs`). Each takes the API as a
//! client sees it, and a way to let a second pass on the backend's clock.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Receiver, Scripted, TestApp, idle_job};

/// A PATCH or pause that changes nothing writes nothing: no new `updated_at`, and (seen
/// through the next real change) no version bump that a conflict could come from.
pub async fn a_change_that_changes_nothing_writes_nothing(
    app: &TestApp,
    pass_a_second: impl AsyncFn(),
) {
    let job = app.create_job(idle_job("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let path = format!("/jobs/{id}");
    pass_a_second().await;
    let same_schedule = json!({
        "schedule_type": job["schedule_type"],
        "schedule": job["schedule"],
        "timezone": job["timezone"],
    });
    for body in [
        json!({}),
        json!({"name": job["name"]}),
        json!({"enabled": true}),
        same_schedule,
    ] {
        let r = app.call(Method::PATCH, &path, Some(&body)).await;
        assert_eq!(r.status, 200, "{body}: {}", r.body);
        assert_eq!(r.body["data"], job, "{body} changed the job");
    }
    assert_eq!(app.get(&path).await.body["data"], job);

    // Paused, a PATCH that pauses again is like POST /pause again: nothing.
    let paused = app.post_empty(&format!("{path}/pause")).await;
    assert_eq!(paused.status, 200);
    let stored = app.get(&path).await.body["data"].clone();
    pass_a_second().await;
    let r = app
        .call(Method::PATCH, &path, Some(&json!({"enabled": false})))
        .await;
    assert_eq!(r.body["data"], stored);
    app.post_empty(&format!("{path}/pause")).await;
    assert_eq!(app.get(&path).await.body["data"], stored);

    // A real change is written.
    let r = app
        .call(Method::PATCH, &path, Some(&json!({"name": "renamed"})))
        .await;
    assert_eq!(r.body["data"]["name"], "renamed");
    assert_ne!(r.body["data"]["updated_at"], stored["updated_at"]);
}

/// With a quota of 5, 30 concurrent creates for one team store exactly 5 jobs; the others
/// are refused with the quota error.
pub async fn concurrent_creates_never_exceed_the_quota(app: Arc<TestApp>) {
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.post("/jobs", &idle_job("https://example.com/")).await })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            201 => created += 1,
            _ => {
                r.assert_error(422, "Job quota exceeded");
            }
        }
    }
    assert_eq!(created, 5);
    let listed = app.get("/jobs?limit=100").await.body["data"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(5));
    let _: &Value = &listed;
}

/// Success rules: `expect_status` accepts a 404, and `expect_body` fails a 200 whose body
/// does not match, with an error naming the rule (and the attempt is retried like any
/// failure). `drive` lets the backend run what is queued (the hosted executor is driven by
/// hand; the embedded one runs by itself).
pub async fn success_rules_decide_what_succeeds(
    app: &TestApp,
    receiver: &Receiver,
    drive: impl AsyncFn(),
) {
    receiver.script("/gone", vec![Scripted::status(404)]);
    let mut gone = idle_job(&receiver.url("/gone"));
    gone["expect_status"] = json!(["2xx", "404"]);
    gone["max_retries"] = json!(0);
    let gone = app.create_job(gone).await;
    assert_eq!(gone["expect_status"], json!(["2xx", "404"]));

    // The receiver answers 200 {"status":"ok"}; the job wants "healthy".
    let mut picky = idle_job(&receiver.url("/health"));
    picky["expect_body"] = json!(r#""status":\s*"healthy""#);
    picky["max_retries"] = json!(0);
    let picky = app.create_job(picky).await;
    assert_eq!(picky["expect_body"], r#""status":\s*"healthy""#);

    for job in [&gone, &picky] {
        let id = job["id"].as_str().unwrap();
        assert_eq!(
            app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
            202
        );
    }
    let id = |job: &Value| job["id"].as_str().unwrap().to_owned();
    let accepted = executions_of(app, &id(&gone), 1, &drive).await.remove(0);
    assert_eq!(accepted["status"], "success", "{accepted}");
    assert_eq!(accepted["http_status"], 404);
    assert_eq!(accepted["error"], Value::Null);
    let refused = executions_of(app, &id(&picky), 1, &drive).await.remove(0);
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["http_status"], 200);
    assert_eq!(
        refused["error"],
        "HTTP 200: the response body does not match expect_body"
    );

    // Back to the defaults: the fields leave the job's JSON.
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{}", id(&gone)),
            Some(&json!({"expect_status": null, "expect_body": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["data"].get("expect_status").is_none(), "{}", r.body);
}

/// A job's executions (newest first), at least `n`, driving the backend until they are
/// recorded.
pub async fn executions_of(
    app: &TestApp,
    id: &str,
    n: usize,
    drive: &impl AsyncFn(),
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        drive().await;
        let page = app.get(&format!("/jobs/{id}/executions")).await.body["data"].clone();
        let items = page.as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: {} of {n} executions",
            items.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The job as soon as `holds` is true of it (within 15 s, driving the backend meanwhile).
pub async fn job_once(
    app: &TestApp,
    id: &str,
    drive: &impl AsyncFn(),
    holds: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        drive().await;
        let job = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
        if holds(&job) {
            return job;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: the job stayed {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The job list's filters (tags, state, last status, schedule type, name) compose with each
/// other and with the cursors; the execution list's (status, trigger, time range) too. Bad
/// filter values are refused with their parameter named.
pub async fn list_filters_compose_with_cursors(
    app: &TestApp,
    receiver: &Receiver,
    drive: impl AsyncFn(),
) {
    let make = async |name: &str, tags: Value, extra: Value| {
        let mut body = idle_job(&receiver.url("/filtered"));
        body["name"] = json!(name);
        body["tags"] = tags;
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        app.create_job(body).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let interval = json!({"schedule_type": "interval", "schedule": "every_1d"});
    let nightly = make("Billing EU nightly", json!(["billing", "eu"]), json!({})).await;
    let us = make("Billing US", json!(["billing", "us"]), interval.clone()).await;
    let reports = make("Reports", json!(["eu"]), json!({"enabled": false})).await;
    let hourly = make(
        "billing eu hourly",
        json!(["eu", "billing"]),
        interval.clone(),
    )
    .await;
    let plain = make("misc", json!([]), json!({})).await;
    let ids = |r: &crate::helpers::Reply| -> Vec<String> {
        r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Two tags: jobs with both, newest first, a page at a time.
    let first = app.get("/jobs?tag=billing&tag=eu&limit=1").await;
    assert_eq!(ids(&first), vec![hourly.clone()]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app
        .get(&format!("/jobs?tag=billing&tag=eu&limit=1&cursor={cursor}"))
        .await;
    assert_eq!(ids(&second), vec![nightly.clone()]);
    assert!(second.body.get("next_cursor").is_none(), "{}", second.body);
    for (query, want) in [
        ("enabled=false", vec![reports.clone()]),
        (
            "schedule_type=interval&q=BILLING",
            vec![hourly.clone(), us.clone()],
        ),
        ("tag=eu&enabled=true", vec![hourly.clone(), nightly.clone()]),
        ("last_status=none&tag=us", vec![us.clone()]),
        ("last_status=failed", vec![]),
        ("q=misc", vec![plain.clone()]),
    ] {
        assert_eq!(
            ids(&app.get(&format!("/jobs?{query}")).await),
            want,
            "{query}"
        );
    }
    let bad = app
        .get("/jobs?tag=Bad%20Tag&enabled=maybe&last_status=x")
        .await;
    bad.assert_error(422, "Validation failed");
    for field in ["tag", "enabled", "last_status"] {
        assert!(
            bad.body["details"][field].is_array(),
            "{field}: {}",
            bad.body
        );
    }

    // Executions: one failed and one successful manual run of the same job.
    receiver.script("/filtered", vec![Scripted::status(500)]);
    let path = format!("/jobs/{plain}");
    let r = app
        .call(Method::PATCH, &path, Some(&json!({"max_retries": 0})))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for n in 1..=2 {
        assert_eq!(app.post_empty(&format!("{path}/trigger")).await.status, 202);
        executions_of(app, &plain, n, &drive).await;
    }
    let count = async |query: &str| {
        let r = app.get(&format!("{path}/executions?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.body["data"].as_array().unwrap().len()
    };
    assert_eq!(count("status=failed").await, 1);
    assert_eq!(count("status=success").await, 1);
    assert_eq!(count("trigger=manual").await, 2);
    assert_eq!(count("trigger=schedule").await, 0);
    assert_eq!(count("from=2999-01-01T00:00:00Z").await, 0);
    assert_eq!(count("until=2000-01-01T00:00:00Z").await, 0);
    assert_eq!(
        count("from=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z").await,
        2
    );
    let paged = app
        .get(&format!("{path}/executions?trigger=manual&limit=1"))
        .await;
    let cursor = paged.body["next_cursor"].as_str().expect("a second page");
    let rest = app
        .get(&format!(
            "{path}/executions?trigger=manual&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 1);
    assert_ne!(rest.body["data"][0]["id"], paged.body["data"][0]["id"]);
    let bad = app
        .get(&format!(
            "{path}/executions?status=ok&from=yesterday&trigger=cron"
        ))
        .await;
    bad.assert_error(422, "Validation failed");
    for field in ["status", "from", "trigger"] {
        assert!(
            bad.body["details"][field].is_array(),
            "{field}: {}",
            bad.body
        );
    }
}

/// Idempotent requests: 10 concurrent creates with one `Idempotency-Key` make one job and
/// all get its 201; a retry of a trigger replays without a second run; the same key with
/// another request is refused; another team's key of the same name is its own.
pub async fn an_idempotency_key_makes_retries_safe(
    app: &TestApp,
    other_team_key: &str,
    drive: impl AsyncFn(),
) {
    // Nothing listens on port 9: a run is one failed attempt, never a call leaving the machine.
    let mut body = idle_job("http://127.0.0.1:9/once-only");
    body["max_retries"] = json!(0);
    let send = |key: &str, body: Value| {
        app.client
            .post(app.url("/jobs"))
            .bearer_auth(&app.key)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let replies =
        futures_util::future::join_all((0..10).map(|_| send("create-1", body.clone()))).await;
    let mut bodies = Vec::new();
    let mut replayed = 0;
    for r in replies {
        let r = r.unwrap();
        assert_eq!(r.status(), 201);
        assert!(r.headers().get("location").is_some());
        replayed += usize::from(r.headers().get("idempotent-replayed").is_some());
        bodies.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(replayed, 9, "one request handled, nine replayed");
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every reply is the first"
    );
    let listed = app.get("/jobs").await.body["data"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "one job");
    let id = bodies[0]["data"]["id"].as_str().unwrap().to_owned();

    // The same key, another request: refused, nothing created.
    let mut changed = body.clone();
    changed["name"] = json!("another");
    let r = send("create-1", changed).await.unwrap();
    assert_eq!(r.status(), 422);
    let error: Value = r.json().await.unwrap();
    assert_eq!(
        error["details"]["idempotency_key"],
        json!(["was already used for a different request"])
    );
    // An invalid key.
    let r = send(&"k".repeat(256), body.clone()).await.unwrap();
    assert_eq!(r.status(), 422);

    // A trigger retried with its key runs once.
    let trigger = || {
        app.client
            .post(app.url(&format!("/jobs/{id}/trigger")))
            .bearer_auth(&app.key)
            .header("idempotency-key", "trigger-1")
            .send()
    };
    assert_eq!(trigger().await.unwrap().status(), 202);
    let again = trigger().await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    executions_of(app, &id, 1, &drive).await;
    drive().await;
    let runs = app.get(&format!("/jobs/{id}/executions")).await.body["data"].clone();
    let run_ids: std::collections::BTreeSet<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(run_ids.len(), 1, "one run: {runs}");
    assert_eq!(runs.as_array().unwrap().len(), 1, "one attempt: {runs}");

    // Another team's "create-1" is another key.
    let r = app
        .client
        .post(app.url("/jobs"))
        .bearer_auth(other_team_key)
        .header("idempotency-key", "create-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
}

/// Alerts on a failure streak: with `notify_after_failures: 3` the first two failed runs
/// send nothing, the third a failure notice, the success after it one recovery notice;
/// with `auto_disable_after_failures: 5` the fifth failure in a row pauses the job with
/// its reason (and a notice). A pause through the API may carry a reason too. Returns the
/// job's id.
pub async fn a_failure_streak_notifies_and_disables(
    app: &TestApp,
    target: &Receiver,
    notices: &Receiver,
    drive: impl AsyncFn(),
) -> String {
    let s = Scripted::status;
    target.script(
        "/streak",
        vec![
            s(500),
            s(500),
            s(500),
            s(200),
            s(500),
            s(500),
            s(500),
            s(500),
            s(500),
        ],
    );
    let mut body = idle_job(&target.url("/streak"));
    body["max_retries"] = json!(0);
    body["failure_notify"] = json!(true);
    body["notify_after_failures"] = json!(3);
    body["auto_disable_after_failures"] = json!(5);
    let job = app.create_job(body).await;
    assert_eq!(job["notify_after_failures"], 3);
    assert_eq!(job["auto_disable_after_failures"], 5);
    let id = job["id"].as_str().unwrap().to_owned();
    let events = || -> Vec<String> {
        notices
            .received("/notices")
            .iter()
            .map(|n| {
                serde_json::from_str::<Value>(&n.body).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    // The failure streak after each run of the script.
    let streaks = [1, 2, 3, 0, 1, 2, 3, 4, 5];
    for (run, streak) in (1..=9usize).zip(streaks) {
        assert_eq!(
            app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
            202,
            "run {run}"
        );
        executions_of(app, &id, run, &drive).await;
        // The run's end is written on the job just after its attempt is recorded.
        // (An unbroken streak is left out of the job: zero.)
        job_once(app, &id, &drive, |j| {
            j["consecutive_failures"].as_u64().unwrap_or(0) == streak
        })
        .await;
        if run == 2 {
            assert!(events().is_empty(), "no notice before the third failure");
        }
    }
    // Notices are sent after the run is recorded: give the last ones a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while events().len() < 6 && std::time::Instant::now() < deadline {
        drive().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut got = events();
    got.sort();
    assert_eq!(
        got,
        [
            "job_disabled",
            "job_failed",
            "job_failed",
            "job_failed",
            "job_failed",
            "job_recovered"
        ]
    );
    let paused = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(paused["enabled"], false);
    assert_eq!(
        paused["paused_reason"],
        "auto-disabled after 5 consecutive failed runs"
    );
    assert_eq!(paused["consecutive_failures"], 5);
    app.post_empty(&format!("/jobs/{id}/trigger"))
        .await
        .assert_error(409, "Job is paused");

    // Resumed, the reason goes; a pause may give one of its own.
    let resumed = app.post_empty(&format!("/jobs/{id}/resume")).await;
    assert!(
        resumed.body["data"].get("paused_reason").is_none(),
        "{}",
        resumed.body
    );
    let r = app
        .post(
            &format!("/jobs/{id}/pause"),
            &json!({"reason": "maintenance window"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["data"]["paused_reason"], "maintenance window");
    let r = app
        .post(
            &format!("/jobs/{id}/pause"),
            &json!({"reason": "x".repeat(201)}),
        )
        .await;
    r.assert_error(422, "Validation failed");
    let r = app
        .post(&format!("/jobs/{id}/pause"), &json!({"why": "x"}))
        .await;
    assert_eq!(r.body["details"]["why"], json!(["is not a known field"]));
    id
}

/// Backfill: the job's scheduled times in a past range run, each with its `scheduled_at`
/// and the run id its scheduled run would have had, so a second backfill of the range sends
/// nothing again. Bad ranges are refused.
pub async fn a_backfill_runs_the_missed_times_once(
    app: &TestApp,
    receiver: &Receiver,
    now: chrono::DateTime<chrono::Utc>,
    drive: impl AsyncFn(),
) {
    let mut body = idle_job(&receiver.url("/backfill"));
    body["schedule"] = json!("*/30 * * * *");
    let job = app.create_job(body).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let ts = |t: chrono::DateTime<chrono::Utc>| krafter_shared::domain::time::format(t);
    let range = json!({"from": ts(now - chrono::Duration::hours(2)), "until": ts(now)});
    let path = format!("/jobs/{id}/backfill");
    let r = app.post(&path, &range).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let times: Vec<String> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["scheduled_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(times.len(), 4, "every half hour for two hours: {times:?}");
    let executions = executions_of(app, &id, 4, &drive).await;
    let mut fired: Vec<String> = executions
        .iter()
        .map(|e| e["scheduled_at"].as_str().unwrap().to_owned())
        .collect();
    fired.sort();
    assert_eq!(fired, times);
    assert!(executions.iter().all(|e| e["trigger"] == "schedule"));

    // Again: the same runs, recorded already, are not sent again.
    let again = app.post(&path, &range).await;
    assert_eq!(again.status, 202);
    for _ in 0..5 {
        drive().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        receiver.received("/backfill").len(),
        4,
        "each time sent once"
    );

    for (bad, field) in [
        (
            json!({"from": ts(now), "until": ts(now + chrono::Duration::hours(1))}),
            "until",
        ),
        (
            json!({"from": ts(now - chrono::Duration::days(30)), "until": ts(now)}),
            "from",
        ),
        (
            json!({"from": ts(now), "until": ts(now - chrono::Duration::hours(1))}),
            "until",
        ),
        (json!({"until": ts(now)}), "from"),
    ] {
        let r = app.post(&path, &bad).await;
        r.assert_error(422, "Validation failed");
        assert!(r.body["details"][field].is_array(), "{bad}: {}", r.body);
    }
    app.post_empty(&format!("/jobs/{id}/pause")).await;
    app.post(&path, &range)
        .await
        .assert_error(409, "Job is paused");
}

/// A job's own notice URL gets its notices, in Slack's format, signed with the team's
/// secret, each with an `Idempotency-Key`.
pub async fn notices_go_to_the_jobs_url_signed_in_slacks_format(
    app: &TestApp,
    teams: &dyn krafter_shared::ports::TeamStore,
    target: &Receiver,
    drive: impl AsyncFn(),
) {
    let team = krafter_shared::domain::TeamId::parse("alpha").unwrap();
    let secret = krafter_shared::service::ensure_team(teams, &team, chrono::Utc::now())
        .await
        .unwrap()
        .secrets
        .current;
    target.script("/slacky", vec![Scripted::status(500)]);
    let mut body = idle_job(&target.url("/slacky"));
    body["max_retries"] = json!(0);
    body["failure_notify"] = json!(true);
    body["notify_url"] = json!(target.url("/slack-hook"));
    body["notify_format"] = json!("slack");
    let job = app.create_job(body).await;
    assert_eq!(job["notify_format"], "slack");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
        202
    );
    executions_of(app, &id, 1, &drive).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while target.received("/slack-hook").is_empty() && std::time::Instant::now() < deadline {
        drive().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hooks = target.received("/slack-hook");
    assert_eq!(hooks.len(), 1, "one notice, to the job's own URL");
    let hook = &hooks[0];
    // What a Slack incoming webhook accepts: a JSON object with a non-empty `text`.
    let payload: Value = serde_json::from_str(&hook.body).expect("JSON");
    let text = payload["text"].as_str().expect("a text");
    assert!(
        !text.is_empty() && text.contains(job["name"].as_str().unwrap()),
        "{text}"
    );
    assert!(
        text.contains("failed") && text.contains("HTTP 500"),
        "{text}"
    );
    assert_eq!(
        payload.as_object().unwrap().len(),
        1,
        "only `text`: {payload}"
    );
    assert_eq!(hook.headers["content-type"], "application/json");
    assert!(!hook.headers["idempotency-key"].is_empty());
    crate::signing::verify(
        &hook.headers["x-krafter-signature"],
        hook.body.as_bytes(),
        secret.as_str(),
        chrono::Utc::now(),
    )
    .expect("signed with the team's secret");
}

/// A window: the job fires only from `starts_at`, and before `ends_at`; the preview, the
/// upcoming runs and `next_run_at` all keep to it. Returns the job's id.
pub async fn a_window_bounds_the_runs(app: &TestApp, now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Duration, DurationRound};
    let ts = |t: chrono::DateTime<chrono::Utc>| krafter_shared::domain::time::format(t);
    let hour = now.duration_trunc(Duration::hours(1)).unwrap();
    let (starts, ends) = (hour + Duration::hours(3), hour + Duration::hours(6));
    let mut body = idle_job("https://example.com/windowed");
    body["schedule"] = json!("0 * * * *");
    body["starts_at"] = json!(ts(starts));
    body["ends_at"] = json!(ts(ends));
    let job = app.create_job(body).await;
    assert_eq!(job["starts_at"], ts(starts));
    assert_eq!(
        job["next_run_at"],
        ts(starts),
        "the first run is at the window's start"
    );
    let id = job["id"].as_str().unwrap().to_owned();
    let upcoming = app.get(&format!("/jobs/{id}/upcoming?count=10")).await.body["data"].clone();
    let times: Vec<&str> = upcoming
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scheduled_at"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (3..6).map(|h| ts(hour + Duration::hours(h))).collect();
    assert_eq!(times, want, "nothing from ends_at on");
    let preview = app
        .post(
            "/schedules/preview",
            &json!({"schedule_type": "cron", "schedule": "0 * * * *",
                    "starts_at": ts(starts), "ends_at": ts(ends), "count": 10}),
        )
        .await;
    assert_eq!(preview.body["data"], upcoming, "the preview agrees");

    // Opening the end: the runs go on.
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({"ends_at": null})),
        )
        .await;
    assert!(r.body["data"].get("ends_at").is_none(), "{}", r.body);
    let more = app.get(&format!("/jobs/{id}/upcoming?count=10")).await.body["data"].clone();
    assert_eq!(more.as_array().unwrap().len(), 10);
    for (bad, field, message) in [
        (
            json!({"ends_at": ts(starts - Duration::hours(1))}),
            "ends_at",
            "must be after starts_at",
        ),
        (
            json!({"starts_at": null, "ends_at": ts(now - Duration::hours(1))}),
            "ends_at",
            "must be in the future",
        ),
        (
            json!({"starts_at": "tomorrow"}),
            "starts_at",
            "must be an ISO 8601 timestamp (2026-01-31T09:00:00Z)",
        ),
    ] {
        let r = app
            .call(Method::PATCH, &format!("/jobs/{id}"), Some(&bad))
            .await;
        r.assert_error(422, "Validation failed");
        assert_eq!(r.body["details"][field], json!([message]), "{bad}");
    }
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({"ends_at": ts(ends)})),
        )
        .await;
    assert_eq!(r.body["data"]["ends_at"], ts(ends));
    id
}

/// Overlap: three runs triggered at once against a slow receiver. Under `skip` the first
/// runs and the two that came while it was unfinished are recorded as skipped; under
/// `buffer_one` the second waits and starts once the first has finished, and the third is
/// skipped. The receiver never has two calls of one job at the same time.
pub async fn overlapping_runs_are_skipped_or_buffered(
    app: &TestApp,
    receiver: &Receiver,
    drive: impl AsyncFn(),
) {
    let slow = || Scripted::slow(200, std::time::Duration::from_millis(1500));
    for (policy, sent) in [("skip", 1), ("buffer_one", 2)] {
        let path = format!("/slow-{policy}");
        receiver.script(&path, vec![slow(), slow(), slow()]);
        let mut body = idle_job(&receiver.url(&path));
        body["overlap"] = json!(policy);
        body["max_retries"] = json!(0);
        let job = app.create_job(body).await;
        assert_eq!(job["overlap"], policy);
        let id = job["id"].as_str().unwrap().to_owned();
        for _ in 0..3 {
            let r = app.post_empty(&format!("/jobs/{id}/trigger")).await;
            assert_eq!(r.status, 202, "{}", r.body);
        }
        let mut runs = executions_of(app, &id, 3, &drive).await;
        runs.sort_by_key(|e| e["started_at"].as_str().unwrap().to_owned());
        let status = |s: &str| runs.iter().filter(|e| e["status"] == s).count();
        assert_eq!(status("success"), sent, "{policy}: {runs:#?}");
        assert_eq!(status("skipped"), 3 - sent, "{policy}: {runs:#?}");
        assert_eq!(receiver.received(&path).len(), sent, "{policy}");
        for skipped in runs.iter().filter(|e| e["status"] == "skipped") {
            let error = skipped["error"].as_str().unwrap();
            assert!(error.starts_with("skipped: run "), "{error}");
            assert_eq!(skipped["http_status"], Value::Null);
        }
        let filtered = app
            .get(&format!("/jobs/{id}/executions?status=skipped"))
            .await;
        assert_eq!(filtered.body["data"].as_array().unwrap().len(), 3 - sent);
        if policy == "buffer_one" {
            let ok: Vec<&Value> = runs.iter().filter(|e| e["status"] == "success").collect();
            assert!(
                ok[1]["started_at"].as_str() >= ok[0]["finished_at"].as_str(),
                "the waiting run started after the first finished: {ok:#?}"
            );
        }
    }
    // A bad policy is refused with the field named.
    let mut bad = idle_job("https://example.com/");
    bad["overlap"] = json!("queue");
    let r = app.post("/jobs", &bad).await;
    r.assert_error(422, "Validation failed");
    assert_eq!(
        r.body["details"]["overlap"],
        json!(["must be one of: allow, skip, buffer_one"])
    );
}

/// Jitter: a run fires at its time plus an offset of at most `jitter_s`, derived from the
/// job and the time; `next_run_at` and the upcoming runs show when it really fires, and a
/// preview shows by when. `run_due(id, scheduled_at, fires_at)` lets the backend fire the
/// job's next run (the embedded scheduler needs nothing: it waits for its time).
pub async fn jitter_moves_runs_within_bounds_and_next_run_at_shows_it(
    app: &TestApp,
    receiver: &Receiver,
    now: chrono::DateTime<chrono::Utc>,
    run_due: impl AsyncFn(&str, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    drive: impl AsyncFn(),
) {
    use chrono::{DateTime, Duration, Utc};
    let parse = |v: &Value| v.as_str().unwrap().parse::<DateTime<Utc>>().unwrap();
    let mut hourly = idle_job(&receiver.url("/jittered"));
    hourly["schedule"] = json!("0 * * * *");
    hourly["jitter_s"] = json!(900);
    let hourly = app.create_job(hourly).await;
    assert_eq!(hourly["jitter_s"], 900);
    let id = hourly["id"].as_str().unwrap();
    let upcoming = app.get(&format!("/jobs/{id}/upcoming?count=24")).await.body["data"].clone();
    let upcoming = upcoming.as_array().unwrap();
    assert_eq!(hourly["next_run_at"], upcoming[0]["fires_at"]);
    let offsets: Vec<i64> = upcoming
        .iter()
        .map(|r| (parse(&r["fires_at"]) - parse(&r["scheduled_at"])).num_seconds())
        .collect();
    assert!(offsets.iter().all(|o| (0..=900).contains(o)), "{offsets:?}");
    let again = app.get(&format!("/jobs/{id}/upcoming?count=24")).await.body["data"].clone();
    assert_eq!(&again.as_array().unwrap()[..], upcoming, "deterministic");
    assert!(offsets.iter().any(|o| *o != offsets[0]), "{offsets:?}");

    let preview = app
        .post(
            "/schedules/preview",
            &json!({"schedule_type": "cron", "schedule": "0 * * * *", "jitter_s": 900, "count": 3}),
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    for r in preview.body["data"].as_array().unwrap() {
        assert_eq!(
            parse(&r["fires_by"]) - parse(&r["scheduled_at"]),
            Duration::seconds(900)
        );
    }
    for bad in [json!(901), json!(-1)] {
        let r = app
            .post(
                "/schedules/preview",
                &json!({"schedule_type": "cron", "schedule": "0 * * * *", "jitter_s": bad}),
            )
            .await;
        assert_eq!(
            r.body["details"]["jitter_s"],
            json!(["must be between 0 and 900"])
        );
    }

    // A one-time run, fired for real.
    let at = now + Duration::seconds(3);
    let mut once = idle_job(&receiver.url("/once"));
    once["schedule_type"] = json!("once");
    once["schedule"] = json!(krafter_shared::domain::time::format(at));
    once["jitter_s"] = json!(3);
    let once = app.create_job(once).await;
    let id = once["id"].as_str().unwrap().to_owned();
    let fires = parse(&once["next_run_at"]);
    assert!(
        fires >= at && fires <= at + Duration::seconds(3),
        "{fires} for {at}"
    );
    run_due(&id, at, fires).await;
    let run = executions_of(app, &id, 1, &drive).await.remove(0);
    assert_eq!(parse(&run["scheduled_at"]), at, "its own time");
    let started = parse(&run["started_at"]);
    assert!(
        started >= fires && started <= fires + Duration::seconds(2),
        "fired at {started}, next_run_at said {fires}"
    );
}

/// The audit log: every kind of change appears once, with the key's prefix, the request id
/// the client saw, its outcome and the job; a refused request leaves an entry of its
/// refusal and changes nothing; another team reads none of it. `read_key` is a `cron:read`
/// key of the same team, `other_key` a key of another team.
pub async fn every_change_is_audited_once_with_its_key_and_request(
    app: &TestApp,
    read_key: &str,
    other_key: &str,
) {
    use crate::helpers::Reply;
    let now = chrono::Utc::now();
    let ts = |t: chrono::DateTime<chrono::Utc>| krafter_shared::domain::time::format(t);
    let mut asked: Vec<(&str, String, u16)> = Vec::new();
    let mut note = |action: &'static str, r: &Reply| {
        asked.push((
            action,
            r.header("x-request-id").unwrap().to_owned(),
            r.status,
        ));
    };
    let initial = app.get("/team/signing-secret").await;
    assert_eq!(initial.status, 200, "{}", initial.body);
    let initial = initial.body["data"]["secret"].as_str().unwrap().to_owned();
    // Triggered below: nothing listens on port 9, so no call leaves the machine.
    let mut job = idle_job("http://127.0.0.1:9/audited");
    job["max_retries"] = json!(0);
    let created = app.post("/jobs", &job).await;
    note("job.create", &created);
    let id = created.body["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/jobs/{id}");
    let calls: [(&'static str, Method, String, Option<Value>); 6] = [
        (
            "job.update",
            Method::PATCH,
            path.clone(),
            Some(json!({"name": "renamed"})),
        ),
        ("job.pause", Method::POST, format!("{path}/pause"), None),
        ("job.resume", Method::POST, format!("{path}/resume"), None),
        ("job.trigger", Method::POST, format!("{path}/trigger"), None),
        (
            "job.backfill",
            Method::POST,
            format!("{path}/backfill"),
            Some(json!({"from": ts(now - chrono::Duration::hours(2)),
                        "until": ts(now - chrono::Duration::hours(1))})),
        ),
        (
            "team.rotate_secret",
            Method::POST,
            "/team/signing-secret/rotate".into(),
            None,
        ),
    ];
    for (action, method, p, body) in calls {
        let r = app.call(method, &p, body.as_ref()).await;
        assert!(r.status < 300, "{action}: {} {}", r.status, r.body);
        note(action, &r);
    }
    // Refused: a bad PATCH (nothing changes), a read-only key's create (nothing made).
    let bad = app
        .call(Method::PATCH, &path, Some(&json!({"timeout_ms": 1})))
        .await;
    bad.assert_error(422, "Validation failed");
    note("job.update", &bad);
    assert_eq!(app.get(&path).await.body["data"]["name"], "renamed");
    let jobs_before = app.get("/jobs?limit=100").await.body["data"].clone();
    let refused = app
        .call_as(
            Some(read_key),
            Method::POST,
            "/jobs",
            Some(&idle_job("https://example.com/")),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.get("/jobs?limit=100").await.body["data"], jobs_before);
    let deleted = app.call(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    note("job.delete", &deleted);

    let log = app.get("/audit?limit=100").await;
    assert_eq!(log.status, 200, "{}", log.body);
    let entries = log.body["data"].as_array().unwrap().clone();
    assert_eq!(entries.len(), asked.len() + 1, "{entries:#?}");
    let prefix = &app.key[..12];
    for (action, request_id, status) in &asked {
        let found: Vec<&Value> = entries
            .iter()
            .filter(|e| e["request_id"] == request_id.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{action} {request_id}: {entries:#?}");
        let e = found[0];
        assert_eq!(e["action"], *action);
        assert_eq!(e["status"], *status);
        assert_eq!(e["key_prefix"], prefix);
        assert!(e["source"].as_str().is_some_and(|s| !s.is_empty()));
        if *action != "team.rotate_secret" {
            assert_eq!(e["job_id"], id.as_str(), "{action}");
        }
    }
    let refusal: Vec<&Value> = entries.iter().filter(|e| e["status"] == 403).collect();
    assert_eq!(refusal.len(), 1);
    assert_eq!(refusal[0]["action"], "job.create");
    assert_eq!(refusal[0]["outcome"], "refused");
    assert_eq!(refusal[0]["key_prefix"], &read_key[..12]);
    assert_eq!(entries[0]["action"], "job.delete", "newest first");

    // Filters and paging.
    let of_job = app.get(&format!("/audit?job_id={id}&limit=100")).await.body["data"].clone();
    assert_eq!(
        of_job.as_array().unwrap().len(),
        asked.len() - 1,
        "all but the rotation"
    );
    let first = app.get("/audit?limit=4").await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.get(&format!("/audit?limit=100&cursor={cursor}")).await;
    let mut paged = first.body["data"].as_array().unwrap().clone();
    paged.extend(rest.body["data"].as_array().unwrap().iter().cloned());
    assert_eq!(paged, entries);
    app.get("/audit?job_id=nope")
        .await
        .assert_error(422, "Validation failed");

    // Another team reads none of it; a read key may read, but not see the signing secret.
    let other = app
        .call_as(Some(other_key), Method::GET, "/audit", None)
        .await;
    assert_eq!(other.status, 200);
    assert_eq!(other.body["data"], json!([]));
    let read = app
        .call_as(Some(read_key), Method::GET, "/audit?limit=1", None)
        .await;
    assert_eq!(read.status, 200);
    let secret = app
        .call_as(Some(read_key), Method::GET, "/team/signing-secret", None)
        .await;
    assert_eq!(secret.status, 403);
    let secret = app.get("/team/signing-secret").await;
    assert_eq!(secret.status, 200, "{}", secret.body);
    assert!(
        secret.body["data"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_ne!(secret.body["data"]["secret"], initial.as_str(), "rotated");
    assert_eq!(
        secret.body["data"]["previous"],
        initial.as_str(),
        "the old one still signs"
    );
    assert!(
        secret.body["data"]["previous_valid_until"]
            .as_str()
            .is_some()
    );
}

/// Exponential backoff: a run failing three times waits `base`, `2 × base`, then the cap
/// (`3 × base`) instead of `4 × base`. `waits(id)` lets the backend run the job's triggered
/// run to its fourth attempt and tell the three waits it saw (the embedded server's are the
/// gaps between the receiver's requests; the hosted queue's are its messages' delays).
pub async fn an_exponential_backoff_doubles_each_wait_up_to_its_cap(
    app: &TestApp,
    receiver: &Receiver,
    base_ms: u64,
    waits: impl AsyncFn(&str) -> Vec<std::time::Duration>,
) {
    let s = Scripted::status;
    receiver.script("/flaky", vec![s(500), s(500), s(500), s(200)]);
    let mut body = idle_job(&receiver.url("/flaky"));
    body["retry_backoff"] = json!("exponential");
    body["retry_base_ms"] = json!(base_ms);
    body["retry_max_ms"] = json!(3 * base_ms);
    let created = app.create_job(body).await;
    assert_eq!(created["retry_backoff"], "exponential");
    assert_eq!(created["retry_base_ms"], base_ms);
    assert_eq!(created["retry_max_ms"], 3 * base_ms);
    let id = created["id"].as_str().unwrap().to_owned();
    let r = app.post_empty(&format!("/jobs/{id}/trigger")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let seen = waits(&id).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    let base = std::time::Duration::from_millis(base_ms);
    for (wait, times) in seen.iter().zip([1, 2, 3]) {
        assert!(*wait >= base * times, "1×, 2×, then the 3× cap: {seen:?}");
    }
    assert!(seen[2] < base * 4, "capped, not 4×: {seen:?}");
}
