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
