//! Every endpoint: success shapes, idempotency, pagination, deletion.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{Receiver, TestApp, health_check, idle_job};

#[tokio::test]
async fn health_answers_without_a_key() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(format!("{}/api/v1/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ratelimit-limit"));
    let request_id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));
}

#[tokio::test]
async fn jobs_are_listed_newest_first() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut body = idle_job("https://example.com/");
        body["name"] = json!(format!("job {i}"));
        ids.push(app.create_job(body).await["id"].clone());
    }
    let r = app.get("/jobs").await;
    assert_eq!(r.status, 200);
    let listed: Vec<Value> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].clone())
        .collect();
    ids.reverse();
    assert_eq!(listed, ids);
    assert!(
        r.body.get("next_cursor").is_none(),
        "without ?limit, all jobs and no cursor"
    );
}

#[tokio::test]
async fn jobs_page_with_limit_and_cursor() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(app.create_job(idle_job("https://example.com/")).await["id"].clone());
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut path = "/jobs?limit=2".to_owned();
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.body["data"].as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|j| j["id"].clone()));
        match r.body.get("next_cursor").and_then(Value::as_str) {
            Some(c) => path = format!("/jobs?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, created, "every job once, newest first");
    app.get("/jobs?limit=0")
        .await
        .assert_error(422, "Validation failed");
    app.get("/jobs?limit=101")
        .await
        .assert_error(422, "Validation failed");
    let r = app.get("/jobs?cursor=!!!").await;
    r.assert_error(422, "Validation failed");
    assert_eq!(r.body["details"]["cursor"], json!(["is invalid"]));
}

#[tokio::test]
async fn a_job_is_read_by_id() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let r = app
        .get(&format!("/jobs/{}", job["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], job);
}

#[tokio::test]
async fn patch_changes_only_the_given_fields() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({
                "name": "Renamed",
                "method": "POST",
                "body": "{\"hello\":1}",
                "headers": {"X-Token": "abc"},
                "timeout_ms": 5000,
                "max_retries": 0,
                "failure_notify": true
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let updated = &r.body["data"];
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["method"], "POST");
    assert_eq!(updated["body"], "{\"hello\":1}");
    assert_eq!(updated["headers"], json!({"X-Token": "abc"}));
    assert_eq!(updated["timeout_ms"], 5000);
    assert_eq!(updated["max_retries"], 0);
    assert_eq!(updated["failure_notify"], true);
    for unchanged in [
        "schedule",
        "schedule_type",
        "timezone",
        "url",
        "next_run_at",
        "created_at",
    ] {
        assert_eq!(updated[unchanged], job[unchanged], "{unchanged}");
    }
    assert_eq!(app.get(&format!("/jobs/{id}")).await.body["data"], *updated);
}

#[tokio::test]
async fn patching_the_schedule_recomputes_the_next_run() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({"schedule_type": "cron", "schedule": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let next: chrono::DateTime<chrono::Utc> = r.body["data"]["next_run_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let local = next.with_timezone(&chrono_tz::Europe::Berlin);
    use chrono::{Datelike, Timelike};
    assert_eq!((local.hour(), local.minute()), (9, 0));
    assert!(local.weekday().number_from_monday() <= 5);
}

#[tokio::test]
async fn patch_with_enabled_pauses_and_resumes() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.body["data"]["enabled"], false);
    assert_eq!(r.body["data"]["next_run_at"], Value::Null);
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.body["data"]["enabled"], true);
    assert!(r.body["data"]["next_run_at"].is_string());
}

#[tokio::test]
async fn pause_and_resume_are_idempotent_and_resume_restarts_the_interval() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    for _ in 0..2 {
        let r = app.post_empty(&format!("/jobs/{id}/pause")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["data"]["enabled"], false);
    }
    let paused = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(paused["next_run_at"], Value::Null, "null while paused");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        let r = app.post_empty(&format!("/jobs/{id}/resume")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["data"]["enabled"], true);
    }
    let resumed = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
    let next: chrono::DateTime<chrono::Utc> =
        resumed["next_run_at"].as_str().unwrap().parse().unwrap();
    let updated: chrono::DateTime<chrono::Utc> =
        resumed["updated_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        next - updated,
        chrono::Duration::minutes(5),
        "counted from the resume"
    );
    assert_ne!(resumed["next_run_at"], job["next_run_at"]);
}

#[tokio::test]
async fn a_deleted_job_is_gone_and_never_runs_again() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({
            "name": "every second-ish",
            "schedule_type": "interval",
            "schedule": "every_30s",
            "url": receiver.url("/deleted"),
        }))
        .await;
    let id = job["id"].as_str().unwrap();
    let r = app.call(Method::DELETE, &format!("/jobs/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"ok": true}));
    app.get(&format!("/jobs/{id}"))
        .await
        .assert_error(404, "Not found");
    app.call(Method::DELETE, &format!("/jobs/{id}"), None)
        .await
        .assert_error(404, "Not found");
    app.post_empty(&format!("/jobs/{id}/trigger"))
        .await
        .assert_error(404, "Not found");
    app.get(&format!("/jobs/{id}/executions"))
        .await
        .assert_error(404, "Not found");
    assert!(
        app.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(receiver.received("/deleted").is_empty());
}

#[tokio::test]
async fn triggering_a_paused_job_is_a_conflict() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    app.post_empty(&format!("/jobs/{id}/pause")).await;
    let r = app.post_empty(&format!("/jobs/{id}/trigger")).await;
    r.assert_error(409, "Job is paused");
}

#[tokio::test]
async fn executions_are_listed_newest_first_and_page() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check(&receiver.url("/many"))).await;
    let id = job["id"].as_str().unwrap();
    for _ in 0..5 {
        assert_eq!(
            app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
            202
        );
    }
    let all = app
        .wait_for_executions(id, 5, Duration::from_secs(10))
        .await;
    assert_eq!(all.len(), 5);
    let ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    let r = app.get(&format!("/jobs/{id}/executions")).await;
    assert_eq!(
        r.body["data"].as_array().unwrap().len(),
        5,
        "default limit 20"
    );
    let mut seen = Vec::new();
    let mut path = format!("/jobs/{id}/executions?limit=2");
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status, 200);
        seen.extend(
            r.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match r.body.get("next_cursor").and_then(Value::as_str) {
            Some(c) => path = format!("/jobs/{id}/executions?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let one = app.get(&format!("/jobs/{id}/executions/{}", ids[0])).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["data"], all[0]);
    app.get(&format!("/jobs/{id}/executions/{}", uuid::Uuid::new_v4()))
        .await
        .assert_error(404, "Not found");
    app.get(&format!("/jobs/{id}/executions/not-a-uuid"))
        .await
        .assert_error(404, "Not found");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = TestApp::spawn().await;
    app.get("/nothing-here")
        .await
        .assert_error(404, "Not found");
    app.call(Method::PUT, "/jobs", None)
        .await
        .assert_error(405, "Method not allowed");
}

#[tokio::test]
async fn a_team_at_its_quota_cannot_create_more_jobs() {
    let app = TestApp::spawn_with(|c| c.settings.max_jobs_per_team = 2).await;
    for _ in 0..2 {
        app.create_job(idle_job("https://example.com/")).await;
    }
    let r = app.post("/jobs", &idle_job("https://example.com/")).await;
    r.assert_error(422, "Job quota exceeded");
    assert_eq!(
        app.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn thirty_concurrent_creates_never_exceed_the_quota() {
    let app = TestApp::spawn_with(|c| c.settings.max_jobs_per_team = 5).await;
    crate::scenarios::concurrent_creates_never_exceed_the_quota(std::sync::Arc::new(app)).await;
}

#[tokio::test]
async fn a_change_that_changes_nothing_writes_nothing() {
    let app = TestApp::spawn().await;
    // Times are kept to the second: wait for the next one, so that a write would show.
    crate::scenarios::a_change_that_changes_nothing_writes_nothing(&app, async || {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_changes_to_one_job_are_serialised_and_all_succeed() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    let job = app
        .create_job(health_check("https://example.com/hook"))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                let path = format!("/jobs/{id}");
                match i % 3 {
                    0 => {
                        app.call(
                            Method::PATCH,
                            &path,
                            Some(&json!({"name": format!("n{i}")})),
                        )
                        .await
                        .status
                    }
                    1 => app.post_empty(&format!("{path}/pause")).await.status,
                    _ => app.post_empty(&format!("{path}/resume")).await.status,
                }
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}

#[tokio::test]
async fn list_filters_compose_with_cursors() {
    let receiver = crate::helpers::Receiver::start().await;
    let app = TestApp::spawn().await;
    crate::scenarios::list_filters_compose_with_cursors(&app, &receiver, async || {}).await;
}

#[tokio::test]
async fn an_idempotency_key_makes_retries_safe() {
    let app = TestApp::spawn().await;
    let other = app
        .new_key("beta", &[krafter_shared::domain::Scope::Write])
        .await;
    crate::scenarios::an_idempotency_key_makes_retries_safe(&app, &other, async || {
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await;
}

#[tokio::test]
async fn a_window_bounds_the_runs() {
    let app = TestApp::spawn().await;
    crate::scenarios::a_window_bounds_the_runs(&app, chrono::Utc::now()).await;
}

#[tokio::test]
async fn every_change_is_audited_once_with_its_key_and_request() {
    use krafter_shared::domain::Scope;
    let app = TestApp::spawn().await;
    let read = app.new_key("alpha", &[Scope::Read]).await;
    let other = app.new_key("beta", &[Scope::Write]).await;
    crate::scenarios::every_change_is_audited_once_with_its_key_and_request(&app, &read, &other)
        .await;
}
