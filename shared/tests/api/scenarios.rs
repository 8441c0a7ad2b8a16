//! Scenarios written once and run against both backends: the embedded server
//! (`endpoints.rs`) and the hosted router on moto (`hosted.rs`). Each takes the API as a
//! client sees it, and a way to let a second pass on the backend's clock.

use std::sync::Arc;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, idle_job};

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
