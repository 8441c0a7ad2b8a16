//! Every validation rule: a clear Krafter error, and nothing stored.

use axum::http::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, health_check};

fn with(field: &str, value: Value) -> Value {
    let mut body = health_check("https://example.com/api/health");
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = health_check("https://example.com/api/health");
    body.as_object_mut().unwrap().remove(field);
    body
}

/// (body, field, message): each must be refused with exactly that message for that field.
fn invalid_bodies() -> Vec<(Value, &'static str, String)> {
    let long = |n: usize| "a".repeat(n);
    let cron = |s: &str| {
        let mut b = with("schedule_type", json!("cron"));
        b["schedule"] = json!(s);
        b
    };
    let once = |s: &str| {
        let mut b = with("schedule_type", json!("once"));
        b["schedule"] = json!(s);
        b
    };
    let mut cases = vec![
        (without("name"), "name", "can't be blank".to_owned()),
        (with("name", json!("")), "name", "can't be blank".to_owned()),
        (
            with("name", json!("   ")),
            "name",
            "can't be blank".to_owned(),
        ),
        (
            with("name", json!(long(201))),
            "name",
            "is too long (maximum is 200 characters)".to_owned(),
        ),
        (
            without("schedule_type"),
            "schedule_type",
            "can't be blank".to_owned(),
        ),
        (
            with("schedule_type", json!("weekly")),
            "schedule_type",
            "is not included in the list (cron, interval, once)".to_owned(),
        ),
        (without("schedule"), "schedule", "can't be blank".to_owned()),
        (
            with("schedule", json!("every_5x")),
            "schedule",
            "is not a valid interval".to_owned(),
        ),
        (
            with("schedule", json!("every_0m")),
            "schedule",
            "is not a valid interval".to_owned(),
        ),
        (
            with("schedule", json!("every_366d")),
            "schedule",
            "is not a valid interval".to_owned(),
        ),
        (
            with("schedule", json!("every_45s")),
            "schedule",
            "is not a valid interval".to_owned(),
        ),
        (
            with("timezone", json!("Mars/Olympus_Mons")),
            "timezone",
            "is not a valid IANA timezone".to_owned(),
        ),
        (without("url"), "url", "can't be blank".to_owned()),
        (
            with("url", json!("example.com/x")),
            "url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("url", json!("ftp://example.com/x")),
            "url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("url", json!("http://host/a\u{0}b")),
            "url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("url", json!("http://host/a\u{1}b")),
            "url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("url", json!("http://host/a\u{1b}b")),
            "url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("url", json!("http://host/a\u{7f}b")),
            "url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("url", json!(format!("https://example.com/{}", long(2040)))),
            "url",
            "is too long (maximum is 2048 characters)".to_owned(),
        ),
        (
            with("method", json!("FETCH")),
            "method",
            "is invalid".to_owned(),
        ),
        (
            with("method", json!("get")),
            "method",
            "is invalid".to_owned(),
        ),
        (
            with("headers", json!({"Host": "evil"})),
            "headers",
            "must not set Host (it is managed by the connection)".to_owned(),
        ),
        (
            with("headers", json!({"Content-Length": "1"})),
            "headers",
            "must not set Content-Length (it is managed by the connection)".to_owned(),
        ),
        (
            with("headers", json!({"Connection": "close"})),
            "headers",
            "must not set Connection (it is managed by the connection)".to_owned(),
        ),
        (
            with("headers", json!({"bad name": "x"})),
            "headers",
            "has an invalid header name: \"bad name\"".to_owned(),
        ),
        (
            with("headers", json!({"X-A": "line\nbreak"})),
            "headers",
            "has an invalid value for X-A".to_owned(),
        ),
        (
            with(
                "headers",
                Value::Object((0..51).map(|i| (format!("X-{i}"), json!("v"))).collect()),
            ),
            "headers",
            "has too many entries (maximum is 50)".to_owned(),
        ),
        (
            with("body", json!(long(64 * 1024 + 1))),
            "body",
            "is too long (maximum is 65536 bytes)".to_owned(),
        ),
        (
            with("timeout_ms", json!(999)),
            "timeout_ms",
            "must be between 1000 and 300000".to_owned(),
        ),
        (
            with("timeout_ms", json!(300_001)),
            "timeout_ms",
            "must be between 1000 and 300000".to_owned(),
        ),
        (
            with("max_retries", json!(-1)),
            "max_retries",
            "must be between 0 and 10".to_owned(),
        ),
        (
            with("max_retries", json!(11)),
            "max_retries",
            "must be between 0 and 10".to_owned(),
        ),
        (
            with("colour", json!("blue")),
            "colour",
            "is not a known field".to_owned(),
        ),
        (
            with("retry_backoff", json!("fibonacci")),
            "retry_backoff",
            "is not included in the list (linear, exponential)".to_owned(),
        ),
        (
            with("retry_base_ms", json!(99)),
            "retry_base_ms",
            "must be between 100 and 86400000".to_owned(),
        ),
        (
            with("retry_max_ms", json!(86_400_001)),
            "retry_max_ms",
            "must be between 100 and 86400000".to_owned(),
        ),
        (
            {
                let mut b = with("retry_base_ms", json!(5000));
                b["retry_max_ms"] = json!(1000);
                b
            },
            "retry_max_ms",
            "must be greater than or equal to retry_base_ms".to_owned(),
        ),
        (
            with("expect_status", json!(["2xx", "600"])),
            "expect_status",
            "has \"600\", which is not a status code or class (100-599, 1xx-5xx)".to_owned(),
        ),
        (
            with("expect_status", json!([])),
            "expect_status",
            "can't be blank".to_owned(),
        ),
        (
            with("expect_status", json!(vec!["200"; 21])),
            "expect_status",
            "has too many entries (maximum is 20)".to_owned(),
        ),
        (
            with("expect_body", json!("(unclosed")),
            "expect_body",
            "is not a valid regular expression".to_owned(),
        ),
        (
            with("expect_body", json!(long(1025))),
            "expect_body",
            "is too long (maximum is 1024 characters)".to_owned(),
        ),
        (
            with("tags", json!(["Billing"])),
            "tags",
            "has \"Billing\", which is not a tag (1 to 32 of a-z, 0-9, - and _, starting with a letter or digit)".to_owned(),
        ),
        (
            with("tags", json!(["eu", "eu"])),
            "tags",
            "has \"eu\" more than once".to_owned(),
        ),
        (
            with("tags", json!((0..11).map(|i| format!("t{i}")).collect::<Vec<_>>())),
            "tags",
            "has too many entries (maximum is 10)".to_owned(),
        ),
        (with("id", json!("x")), "id", "is read-only".to_owned()),
        (
            with("paused_reason", json!("x")),
            "paused_reason",
            "is read-only".to_owned(),
        ),
        (
            with("notify_url", json!("ftp://x")),
            "notify_url",
            "must be an absolute http or https URL".to_owned(),
        ),
        (
            with("notify_format", json!("teams")),
            "notify_format",
            "is not included in the list (json, slack)".to_owned(),
        ),
        (
            with("notify_after_failures", json!(0)),
            "notify_after_failures",
            "must be between 1 and 100".to_owned(),
        ),
        (
            with("auto_disable_after_failures", json!(101)),
            "auto_disable_after_failures",
            "must be between 1 and 100".to_owned(),
        ),
        (
            with("next_run_at", json!(null)),
            "next_run_at",
            "is read-only".to_owned(),
        ),
        (
            once("2020-01-01T00:00:00Z"),
            "schedule",
            "must be in the future".to_owned(),
        ),
        (
            once("tomorrow"),
            "schedule",
            "must be a valid ISO 8601 datetime".to_owned(),
        ),
        (
            once("2030-13-01T00:00:00"),
            "schedule",
            "must be a valid ISO 8601 datetime".to_owned(),
        ),
    ];
    for bad in [
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "*/0 * * * *",
        "5-1 * * * *",
        "* * * * MON#2",
        "0 0 L * *",
        "0 0 30 2 *",
        "@reboot",
        "",
    ] {
        cases.push((
            cron(bad),
            "schedule",
            "is not a valid cron expression".to_owned(),
        ));
    }
    cases
}

#[tokio::test]
async fn every_invalid_field_is_refused_with_its_message_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    for (body, field, message) in invalid_bodies() {
        let r = app.post("/jobs", &body).await;
        r.assert_error(422, "Validation failed");
        let messages = &r.body["details"][field];
        assert!(
            messages
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m == message.as_str())),
            "{field}: expected {message:?} in {} for {body}",
            r.body["details"]
        );
    }
    assert!(
        app.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn every_bad_field_of_one_request_is_named() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/jobs",
            &json!({
                "name": "",
                "schedule_type": "cron",
                "schedule": "not cron",
                "timezone": "Nowhere/Land",
                "url": "nope",
                "method": "BREW",
                "timeout_ms": 1,
                "max_retries": 99
            }),
        )
        .await;
    r.assert_error(422, "Validation failed");
    let details = r.body["details"].as_object().unwrap();
    let mut fields: Vec<&str> = details.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "max_retries",
            "method",
            "name",
            "schedule",
            "timeout_ms",
            "timezone",
            "url"
        ]
    );
}

#[tokio::test]
async fn wrong_json_types_are_invalid_json_with_details() {
    let app = TestApp::spawn().await;
    for (field, value, message) in [
        ("name", json!(5), "must be a string"),
        ("timeout_ms", json!("30000"), "must be an integer"),
        ("timeout_ms", json!(1500.5), "must be an integer"),
        ("enabled", json!("yes"), "must be a boolean"),
        ("failure_notify", json!(1), "must be a boolean"),
        ("headers", json!(["X-A"]), "must be an object of strings"),
        ("body", json!({"a": 1}), "must be a string or null"),
        ("expect_status", json!("2xx"), "must be an array of strings"),
        ("tags", json!("eu"), "must be an array of strings"),
        ("expect_status", json!([200]), "must be an array of strings"),
        ("retry_base_ms", json!("1000"), "must be an integer"),
        ("retry_backoff", json!(null), "must be a string"),
    ] {
        let r = app.post("/jobs", &with(field, value)).await;
        r.assert_error(400, "Invalid JSON");
        assert_eq!(r.body["details"][field], json!([message]), "{field}");
    }
    let r = app
        .client
        .post(app.url("/jobs"))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "Invalid JSON");
    assert!(body["details"]["body"][0].is_string());
    let r = app.post("/jobs", &json!([1, 2])).await;
    r.assert_error(400, "Invalid JSON");
    assert!(
        app.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_body_over_256_kib_is_too_large() {
    let app = TestApp::spawn().await;
    let big = with("body", json!("a".repeat(300 * 1024)));
    app.post("/jobs", &big)
        .await
        .assert_error(413, "Payload too large");
    assert!(
        app.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_rejected_patch_changes_nothing() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    for body in [
        json!({"name": "ok", "timeout_ms": 5}),
        json!({"url": "http://host/a\u{0}b"}),
        json!({"url": "http://host/a\u{7f}b"}),
        json!({"schedule_type": "cron"}),
        json!({"url": 5}),
        json!({"unknown": true}),
    ] {
        let r = app
            .call(Method::PATCH, &format!("/jobs/{id}"), Some(&body))
            .await;
        assert!(r.status == 400 || r.status == 422, "{body}: {}", r.body);
    }
    assert_eq!(app.get(&format!("/jobs/{id}")).await.body["data"], job);
}

#[tokio::test]
async fn optional_fields_take_their_values() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({
            "name": "full",
            "schedule_type": "cron",
            "schedule": "*/15 9-17 * * MON-FRI",
            "timezone": "America/New_York",
            "url": "https://example.com/hook?x=1",
            "method": "POST",
            "headers": {"Authorization": "Bearer t", "X-Trace": "1"},
            "body": "{\"a\":1}",
            "timeout_ms": 1000,
            "max_retries": 10,
            "enabled": false,
            "failure_notify": true
        }))
        .await;
    assert_eq!(job["timezone"], "America/New_York");
    assert_eq!(
        job["headers"],
        json!({"Authorization": "Bearer t", "X-Trace": "1"})
    );
    assert_eq!(job["body"], "{\"a\":1}");
    assert_eq!(job["enabled"], false);
    assert_eq!(job["next_run_at"], Value::Null, "created paused");
    assert_eq!(job["max_retries"], 10);
    let r = app.post("/jobs", &with("body", Value::Null)).await;
    assert_eq!(r.status, 201);
    assert!(
        r.body["data"].get("body").is_none(),
        "no body: the field is left out"
    );
}

#[tokio::test]
async fn a_body_with_a_repeated_key_is_invalid_json_naming_the_key() {
    let app = TestApp::spawn().await;
    let raw = r#"{"name": "twice", "schedule_type": "interval", "schedule": "every_5m",
        "url": "https://example.com/checked", "url": "https://example.com/called"}"#;
    let send = |method: reqwest::Method, path: String, body: &'static str| {
        app.client
            .request(method, app.url(&path))
            .bearer_auth(&app.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send(reqwest::Method::POST, "/jobs".into(), raw)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "Invalid JSON");
    let message = body["details"]["body"][0].as_str().unwrap();
    assert!(
        message.starts_with("the key \"url\" appears more than once"),
        "{message}"
    );
    assert!(
        app.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let nested = r#"{"headers": {"X-A": "1", "X-A": "2"}}"#;
    let r = send(reqwest::Method::PATCH, format!("/jobs/{id}"), nested)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["details"]["body"][0].as_str().unwrap();
    assert!(
        message.starts_with("the key \"X-A\" appears more than once"),
        "{message}"
    );
    assert_eq!(app.get(&format!("/jobs/{id}")).await.body["data"], job);
}
