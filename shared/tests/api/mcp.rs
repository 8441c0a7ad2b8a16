//! The API over MCP (`/api/v1/mcp`), driven by a client no one here wrote: the official MCP
//! Python SDK (`infra/clients/mcp_client.py`, installed into `target/tools` by the test),
//! against the embedded application (and, in `hosted`, the hosted router on moto).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::Method;
use krafter_shared::domain::Scope;
use serde_json::{Value, json};

use crate::helpers::{Receiver, TestApp};

/// Runs `steps` through the SDK client against the MCP endpoint under `base`, with `key`
/// (None: no Authorization header); returns its report (see `mcp_client.py`). Each run is
/// a new connection: the server keeps no session between them.
pub async fn mcp(base: &str, key: Option<&str>, steps: Value) -> Value {
    mcp_in_mode(base, key, "auto", steps).await
}

/// `mcp` with the SDK's connection `mode` (`auto`, or `legacy`: the initialize handshake).
pub async fn mcp_in_mode(base: &str, key: Option<&str>, mode: &str, steps: Value) -> Value {
    let mode = mode.to_owned();
    let python = krafter_testkit::mcp_python();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/clients/mcp_client.py"
    );
    let url = format!("{base}/api/v1/mcp");
    let key = key.unwrap_or_default().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .args([script, &url, &key, &mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the MCP client starts");
        let stdin = child.stdin.take().unwrap();
        serde_json::to_writer(stdin, &steps).unwrap();
        child.wait_with_output().expect("the MCP client ends")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the MCP client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The result of one tool call, which must have connected.
pub async fn call(base: &str, key: &str, tool: &str, arguments: Value) -> Value {
    let report = mcp(
        base,
        Some(key),
        json!([{"call": tool, "arguments": arguments}]),
    )
    .await;
    assert!(report["connect_error"].is_null(), "{report}");
    report["steps"][0].clone()
}

/// A tool error's body: the API's error JSON.
pub fn error_body(result: &Value) -> Value {
    assert_eq!(result["is_error"], true, "{result}");
    serde_json::from_str(result["text"].as_str().unwrap()).unwrap()
}

/// Every HTTP answer the client got (a discovery, then the handshake it falls back to) was
/// `status`.
fn assert_only(report: &Value, status: u16) {
    let statuses = report["http_statuses"].as_array().unwrap();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| *s == status),
        "{report}"
    );
}

fn job_at(receiver: &Receiver) -> Value {
    json!({
        "name": "via MCP",
        "schedule_type": "cron",
        "schedule": "0 3 * * *",
        "url": receiver.url("/mcp-hook"),
        "method": "POST",
        "headers": {"X-Via": "mcp"},
        "body": "{\"from\":\"mcp\"}",
        "max_retries": 0,
    })
}

#[tokio::test]
async fn an_mcp_client_lists_the_tools_creates_a_job_triggers_it_and_reads_its_executions() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let report = mcp(
        &app.base,
        Some(&app.key),
        json!([{"list_tools": true}, {"call": "create_job", "arguments": job_at(&receiver)}]),
    )
    .await;
    assert_eq!(report["server"]["name"], "krafter-cron", "{report}");
    let tools = report["steps"][0]["tools"].as_array().unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for tool in [
        "list_jobs",
        "get_job",
        "create_job",
        "update_job",
        "delete_job",
        "trigger_job",
        "pause_job",
        "resume_job",
        "list_executions",
        "get_execution",
        "list_upcoming_runs",
        "preview_schedule",
    ] {
        assert!(names.contains(tool), "{tool} is not listed: {names:?}");
    }
    let create = tools.iter().find(|t| t["name"] == "create_job").unwrap();
    let required = &create["inputSchema"]["required"];
    assert_eq!(
        *required,
        json!(["name", "schedule", "schedule_type", "url"])
    );
    assert_eq!(create["annotations"]["readOnlyHint"], false);
    let created = &report["steps"][1];
    assert_eq!(created["is_error"], false, "{created}");
    let id = created["structured"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        created["structured"]["data"]["headers"],
        json!({"X-Via": "mcp"})
    );

    let triggered = call(&app.base, &app.key, "trigger_job", json!({"id": id})).await;
    assert_eq!(triggered["structured"], json!({"ok": true}), "{triggered}");
    let sent = receiver
        .wait_for("/mcp-hook", 1, Duration::from_secs(10))
        .await;
    assert_eq!(sent[0].headers["x-via"], "mcp");
    assert_eq!(sent[0].body, "{\"from\":\"mcp\"}");
    app.wait_for_executions(&id, 1, Duration::from_secs(10))
        .await;
    let runs = call(&app.base, &app.key, "list_executions", json!({"id": id})).await;
    let run = &runs["structured"]["data"][0];
    assert_eq!(
        (run["status"].as_str(), run["trigger"].as_str()),
        (Some("success"), Some("manual"))
    );
    let one = json!({"id": id, "execution_id": run["id"]});
    let got = call(&app.base, &app.key, "get_execution", one).await;
    assert_eq!(got["structured"]["data"]["id"], run["id"]);

    // Changes made over MCP are audited like any other, with the key that made them.
    let audit = app.get(&format!("/audit?job_id={id}")).await;
    let actions: Vec<&str> = audit.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["job.trigger", "job.create"], "{}", audit.body);
}

#[tokio::test]
async fn every_job_tool_reaches_its_rest_operation() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let created = call(&app.base, &app.key, "create_job", job_at(&receiver)).await;
    let id = created["structured"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let steps = json!([
        {"call": "get_job", "arguments": {"id": id}},
        {"call": "update_job", "arguments": {"id": id, "name": "renamed", "tags": ["mcp"]}},
        {"call": "list_jobs", "arguments": {"tag": ["mcp"], "limit": 5}},
        {"call": "pause_job", "arguments": {"id": id, "reason": "maintenance"}},
        {"call": "resume_job", "arguments": {"id": id}},
        {"call": "list_upcoming_runs", "arguments": {"id": id, "count": 3}},
        {"call": "preview_schedule",
         "arguments": {"schedule_type": "interval", "schedule": "every_5m", "count": 2}},
        {"call": "delete_job", "arguments": {"id": id, "idempotency_key": "mcp-delete-1"}},
        {"call": "get_job", "arguments": {"id": id}},
    ]);
    let report = mcp(&app.base, Some(&app.key), steps).await;
    let s = |i: usize| report["steps"][i].clone();
    assert_eq!(s(0)["structured"]["data"]["name"], "via MCP", "{report}");
    assert_eq!(s(1)["structured"]["data"]["name"], "renamed");
    let listed = s(2)["structured"]["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(s(3)["structured"]["data"]["paused_reason"], "maintenance");
    assert_eq!(s(4)["structured"]["data"]["enabled"], true);
    assert_eq!(s(5)["structured"]["data"].as_array().unwrap().len(), 3);
    assert_eq!(s(6)["structured"]["data"].as_array().unwrap().len(), 2);
    assert_eq!(s(7)["structured"], json!({"ok": true}));
    assert_eq!(error_body(&s(8))["code"], "not_found");
}

#[tokio::test]
async fn a_read_only_key_may_read_over_mcp_but_is_refused_a_write_tool() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let reader = app.new_key("alpha", &[Scope::Read]).await;
    let steps = json!([
        {"call": "list_jobs", "arguments": {}},
        {"call": "create_job", "arguments": job_at(&receiver)},
    ]);
    let report = mcp(&app.base, Some(&reader), steps).await;
    assert_eq!(report["steps"][0]["is_error"], false, "{report}");
    let refused = error_body(&report["steps"][1]);
    assert_eq!(
        refused,
        json!({"error": "Insufficient scope", "code": "insufficient_scope"})
    );
    assert_eq!(app.get("/jobs").await.body["data"], json!([]));
}

#[tokio::test]
async fn another_teams_job_is_not_found_over_mcp() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let created = call(&app.base, &app.key, "create_job", job_at(&receiver)).await;
    let id = created["structured"]["data"]["id"].clone();
    let other = app.new_key("beta", &[Scope::Write]).await;
    for tool in ["get_job", "trigger_job", "delete_job"] {
        let result = call(&app.base, &other, tool, json!({"id": id})).await;
        assert_eq!(error_body(&result)["error"], "Not found", "{tool}");
    }
    assert_eq!(
        app.get(&format!("/jobs/{}", id.as_str().unwrap()))
            .await
            .status,
        200
    );
    assert!(receiver.received("/mcp-hook").is_empty());
}

#[tokio::test]
async fn tool_errors_carry_the_apis_messages_and_change_nothing() {
    let app = TestApp::spawn().await;
    let bad = json!({"name": " ", "schedule_type": "cron", "schedule": "61 * * * *",
                     "url": "ftp://x", "colour": "red"});
    let invalid = error_body(&call(&app.base, &app.key, "create_job", bad).await);
    assert_eq!(invalid["error"], "Validation failed");
    let details = &invalid["details"];
    assert_eq!(details["name"], json!(["can't be blank"]));
    assert_eq!(
        details["schedule"],
        json!(["is not a valid cron expression"])
    );
    assert_eq!(details["colour"], json!(["is not a known field"]));
    let no_body = json!({"id": uuid::Uuid::now_v7(), "colour": "red"});
    let unknown = error_body(&call(&app.base, &app.key, "trigger_job", no_body).await);
    assert_eq!(
        unknown["details"],
        json!({"colour": ["is not a known field"]})
    );
    assert_eq!(app.get("/jobs").await.body["data"], json!([]));
    assert_eq!(
        app.get("/audit").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn mcp_without_a_valid_key_is_refused_and_counts_against_the_rate_limit() {
    // A long window: the test cannot straddle two of them.
    let app = TestApp::spawn_with(|c| {
        c.settings.rate_limit = 5;
        c.settings.rate_window_secs = 3600;
    })
    .await;
    for key in [None, Some("kr_live_not-a-key")] {
        let report = mcp(&app.base, key, json!([{"list_tools": true}])).await;
        assert!(report["connect_error"].is_string(), "{report}");
        assert_only(&report, 401);
    }
    // The team's limit is shared with REST: once spent there, MCP is refused too.
    for _ in 0..5 {
        app.call(Method::GET, "/jobs", None).await;
    }
    let report = mcp(&app.base, Some(&app.key), json!([{"list_tools": true}])).await;
    assert!(report["connect_error"].is_string(), "{report}");
    assert_only(&report, 429);
}

#[tokio::test]
async fn a_client_on_the_earlier_handshake_protocol_is_served_too() {
    let app = TestApp::spawn().await;
    let steps = json!([{"list_tools": true}, {"call": "list_jobs", "arguments": {}}]);
    let report = mcp_in_mode(&app.base, Some(&app.key), "legacy", steps).await;
    let protocol = report["server"]["protocol"].as_str().unwrap_or_default();
    assert!(protocol.starts_with("2025-"), "{report}");
    assert_eq!(
        report["steps"][1]["structured"],
        json!({"data": []}),
        "{report}"
    );
}
