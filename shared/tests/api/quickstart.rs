//! The published quickstart, request for request: shapes, types and defaults.

use std::time::Duration;

use chrono::DateTime;
use serde_json::{Value, json};

use crate::helpers::{Receiver, TestApp, health_check};

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn ts(v: &Value) -> DateTime<chrono::Utc> {
    let s = v.as_str().unwrap();
    assert!(
        s.ends_with('Z') && s.len() == 20,
        "RFC 3339 whole seconds with Z: {s}"
    );
    s.parse().unwrap()
}

#[tokio::test]
async fn the_quickstart_works_as_published() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;

    // Step 1: create.
    let r = app
        .post("/jobs", &health_check(&receiver.url("/api/health")))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let job = &r.body["data"];
    assert_eq!(keys(&r.body), ["data"]);
    assert_eq!(
        keys(job),
        [
            "id",
            "name",
            "schedule_type",
            "schedule",
            "timezone",
            "url",
            "method",
            "headers",
            "timeout_ms",
            "max_retries",
            "enabled",
            "failure_notify",
            "last_status",
            "last_run_at",
            "next_run_at",
            "created_at",
            "updated_at"
        ],
        "the quickstart's fields, in its order"
    );
    let id = job["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(job["name"], "Health Check");
    assert_eq!(job["schedule_type"], "interval");
    assert_eq!(job["schedule"], "every_5m");
    assert_eq!(job["timezone"], "UTC");
    assert_eq!(job["url"], receiver.url("/api/health"));
    assert_eq!(job["method"], "GET");
    assert_eq!(job["headers"], json!({}));
    assert_eq!(job["timeout_ms"], 30000);
    assert_eq!(job["max_retries"], 3);
    assert_eq!(job["enabled"], true);
    assert_eq!(job["failure_notify"], false);
    assert_eq!(job["last_status"], Value::Null);
    assert_eq!(job["last_run_at"], Value::Null);
    let created = ts(&job["created_at"]);
    assert_eq!(ts(&job["updated_at"]), created);
    assert_eq!(
        ts(&job["next_run_at"]) - created,
        chrono::Duration::minutes(5),
        "created 10:00:00 + every_5m = next 10:05:00"
    );
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/cron/jobs/{id}")
    );

    // Step 3: trigger.
    let r = app.post_empty(&format!("/jobs/{id}/trigger")).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body, json!({"ok": true}));

    // Step 2: execution history.
    let executions = app
        .wait_for_executions(id, 1, Duration::from_secs(10))
        .await;
    let e = &executions[0];
    assert_eq!(
        &keys(e)[..9],
        [
            "id",
            "status",
            "http_status",
            "response_body",
            "error",
            "attempt",
            "duration_ms",
            "started_at",
            "finished_at"
        ],
        "the quickstart's execution fields come first, in its order"
    );
    assert!(uuid::Uuid::parse_str(e["id"].as_str().unwrap()).is_ok());
    assert_eq!(e["status"], "success");
    assert_eq!(e["http_status"], 200);
    assert_eq!(e["response_body"], r#"{"status":"ok"}"#);
    assert_eq!(e["error"], Value::Null);
    assert_eq!(e["attempt"], 1);
    assert!(e["duration_ms"].is_u64());
    assert!(ts(&e["finished_at"]) >= ts(&e["started_at"]));
    assert_eq!(e["job_id"], id);
    assert_eq!(e["trigger"], "manual");

    // Step 4: pause and resume.
    let r = app.post_empty(&format!("/jobs/{id}/pause")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"data": {"id": id, "name": "Health Check", "enabled": false}})
    );
    let r = app.post_empty(&format!("/jobs/{id}/resume")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"data": {"id": id, "name": "Health Check", "enabled": true}})
    );
    assert_eq!(receiver.received("/api/health").len(), 1);
}

#[tokio::test]
async fn the_status_fields_follow_the_last_finished_run() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check(&receiver.url("/ok"))).await;
    let id = job["id"].as_str().unwrap();
    app.post_empty(&format!("/jobs/{id}/trigger")).await;
    app.wait_for_executions(id, 1, Duration::from_secs(10))
        .await;
    let job = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(job["last_status"], "success");
    assert!(ts(&job["last_run_at"]) >= ts(&job["created_at"]));
}
