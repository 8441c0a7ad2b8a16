//! What the executor sends, records and retries.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Receiver, Scripted, TestApp};

fn job(url: &str) -> Value {
    json!({
        "name": "hook",
        "schedule_type": "cron",
        "schedule": "0 0 1 1 *",
        "url": url,
    })
}

async fn trigger(app: &TestApp, id: &str) {
    let r = app.post_empty(&format!("/jobs/{id}/trigger")).await;
    assert_eq!(r.status, 202, "{}", r.body);
}

/// Executions oldest first.
async fn runs(app: &TestApp, id: &str, n: usize, within: Duration) -> Vec<Value> {
    let mut e = app.wait_for_executions(id, n, within).await;
    e.reverse();
    e
}

#[tokio::test]
async fn the_request_carries_method_headers_body_and_krafter_headers() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let mut body = job(&receiver.url("/in?x=1"));
    body["method"] = json!("PUT");
    body["headers"] = json!({"X-Token": "secret", "Content-Type": "application/json"});
    body["body"] = json!("{\"hello\":\"world\"}");
    let created = app.create_job(body).await;
    let id = created["id"].as_str().unwrap();
    trigger(&app, id).await;
    let got = receiver.wait_for("/in", 1, Duration::from_secs(10)).await;
    let r = &got[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.body, "{\"hello\":\"world\"}");
    assert_eq!(r.headers["x-token"], "secret");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.headers["user-agent"],
        format!("krafter-cron/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(r.headers["x-krafter-job-id"], id);
    assert_eq!(r.headers["x-krafter-attempt"], "1");
    let e = &runs(&app, id, 1, Duration::from_secs(5)).await[0];
    assert_eq!(
        r.headers["x-krafter-execution-id"],
        e["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_failing_run_is_retried_with_linear_backoff_and_every_attempt_is_recorded() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await; // backoff base 200 ms
    receiver.script(
        "/flaky",
        vec![
            Scripted::status(500),
            Scripted::status(502),
            Scripted::status(200),
        ],
    );
    let created = app.create_job(job(&receiver.url("/flaky"))).await;
    let id = created["id"].as_str().unwrap();
    trigger(&app, id).await;
    let e = runs(&app, id, 3, Duration::from_secs(10)).await;
    assert_eq!(
        e.iter()
            .map(|e| e["attempt"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        e.iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["failed", "failed", "success"]
    );
    assert_eq!(e[0]["error"], "HTTP 500");
    assert_eq!(e[1]["error"], "HTTP 502");
    assert_eq!(e[0]["http_status"], 500);
    assert_eq!(e[2]["error"], Value::Null);
    assert!(e.iter().all(|x| x["run_id"] == e[0]["run_id"]), "one run");
    let got = receiver.received("/flaky");
    assert_eq!(got.len(), 3);
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= chrono::Duration::milliseconds(200), "{gap1}");
    assert!(
        gap2 >= chrono::Duration::milliseconds(400),
        "{gap2}: 2 × base"
    );
    assert_eq!(got[1].headers["x-krafter-attempt"], "2");
    // The run's end is written on the job just after its last attempt is recorded.
    let job =
        crate::scenarios::job_once(&app, id, &async || {}, |j| !j["last_status"].is_null()).await;
    assert_eq!(job["last_status"], "success");
}

#[tokio::test]
async fn a_run_stops_after_max_retries() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    receiver.script("/down", (0..10).map(|_| Scripted::status(503)).collect());
    let mut body = job(&receiver.url("/down"));
    body["max_retries"] = json!(2);
    let created = app.create_job(body).await;
    let id = created["id"].as_str().unwrap();
    trigger(&app, id).await;
    let e = runs(&app, id, 3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received("/down").len(),
        3,
        "max_retries 2: three attempts"
    );
    assert_eq!(e.len(), 3);
    assert_eq!(
        app.get(&format!("/jobs/{id}")).await.body["data"]["last_status"],
        "failed"
    );
}

#[tokio::test]
async fn client_errors_are_final_but_408_and_429_are_retried() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    receiver.script("/gone", vec![Scripted::status(404)]);
    receiver.script("/busy", vec![Scripted::status(429), Scripted::status(408)]);
    let gone = app.create_job(job(&receiver.url("/gone"))).await;
    let busy = app.create_job(job(&receiver.url("/busy"))).await;
    trigger(&app, gone["id"].as_str().unwrap()).await;
    trigger(&app, busy["id"].as_str().unwrap()).await;
    let e = runs(
        &app,
        busy["id"].as_str().unwrap(),
        3,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(e[2]["status"], "success");
    let g = app.executions(gone["id"].as_str().unwrap()).await;
    assert_eq!(g.len(), 1);
    assert_eq!(g[0]["error"], "HTTP 404");
    assert_eq!(receiver.received("/gone").len(), 1);
}

#[tokio::test]
async fn a_longer_retry_after_is_honoured() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    receiver.script(
        "/later",
        vec![Scripted {
            retry_after: Some("2".into()),
            ..Scripted::status(503)
        }],
    );
    let created = app.create_job(job(&receiver.url("/later"))).await;
    trigger(&app, created["id"].as_str().unwrap()).await;
    let got = receiver
        .wait_for("/later", 2, Duration::from_secs(10))
        .await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= chrono::Duration::milliseconds(1900), "waited {gap}");
}

#[tokio::test]
async fn timeouts_and_connection_errors_are_failures_without_a_status() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    receiver.script("/slow", vec![Scripted::slow(200, Duration::from_secs(3))]);
    let mut slow = job(&receiver.url("/slow"));
    slow["timeout_ms"] = json!(1000);
    slow["max_retries"] = json!(0);
    let slow = app.create_job(slow).await;
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let mut refused = job(&closed_url);
    refused["max_retries"] = json!(0);
    let refused = app.create_job(refused).await;
    trigger(&app, slow["id"].as_str().unwrap()).await;
    trigger(&app, refused["id"].as_str().unwrap()).await;
    let s = &runs(
        &app,
        slow["id"].as_str().unwrap(),
        1,
        Duration::from_secs(10),
    )
    .await[0];
    assert_eq!(s["status"], "failed");
    assert_eq!(s["error"], "timeout after 1000 ms");
    assert_eq!(s["http_status"], Value::Null);
    assert_eq!(s["response_body"], Value::Null);
    let d = s["duration_ms"].as_u64().unwrap();
    assert!(
        d >= 1000,
        "the timeout cannot end the attempt before 1000 ms: {d}"
    );
    let c = &runs(
        &app,
        refused["id"].as_str().unwrap(),
        1,
        Duration::from_secs(10),
    )
    .await[0];
    assert_eq!(c["status"], "failed");
    assert_eq!(c["error"], "connection refused");
    assert_eq!(c["http_status"], Value::Null);
}

#[tokio::test]
async fn only_the_first_16_kib_of_a_response_is_kept() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    receiver.script(
        "/big",
        vec![Scripted {
            body: "x".repeat(100 * 1024),
            ..Scripted::status(200)
        }],
    );
    let created = app.create_job(job(&receiver.url("/big"))).await;
    trigger(&app, created["id"].as_str().unwrap()).await;
    let e = &runs(
        &app,
        created["id"].as_str().unwrap(),
        1,
        Duration::from_secs(10),
    )
    .await[0];
    assert_eq!(e["response_body"].as_str().unwrap().len(), 16 * 1024);
}

#[tokio::test]
async fn pausing_lets_an_attempt_in_flight_finish_and_drops_its_retries() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    receiver.script(
        "/inflight",
        vec![Scripted::slow(500, Duration::from_millis(1500))],
    );
    let created = app.create_job(job(&receiver.url("/inflight"))).await;
    let id = created["id"].as_str().unwrap();
    trigger(&app, id).await;
    receiver
        .wait_for("/inflight", 1, Duration::from_secs(5))
        .await;
    let r = app.post_empty(&format!("/jobs/{id}/pause")).await;
    assert_eq!(r.status, 200);
    let e = runs(&app, id, 1, Duration::from_secs(5)).await;
    assert_eq!(
        e[0]["error"], "HTTP 500",
        "the attempt in flight finished and was recorded"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.received("/inflight").len(),
        1,
        "no retry after the pause"
    );
    assert_eq!(app.executions(id).await.len(), 1);
}

#[tokio::test]
async fn pausing_a_job_drops_its_queued_runs() {
    let receiver = Receiver::start().await;
    // One call at a time: B's run waits in the queue while A's call is in flight.
    let app = TestApp::spawn_with(|c| c.settings.concurrency = 1).await;
    receiver.script("/a", vec![Scripted::slow(200, Duration::from_millis(1500))]);
    let a = app.create_job(job(&receiver.url("/a"))).await;
    let b = app.create_job(job(&receiver.url("/b"))).await;
    trigger(&app, a["id"].as_str().unwrap()).await;
    receiver.wait_for("/a", 1, Duration::from_secs(5)).await;
    trigger(&app, b["id"].as_str().unwrap()).await;
    app.post_empty(&format!("/jobs/{}/pause", b["id"].as_str().unwrap()))
        .await;
    runs(&app, a["id"].as_str().unwrap(), 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        receiver.received("/b").is_empty(),
        "the queued run was dropped"
    );
    assert!(app.executions(b["id"].as_str().unwrap()).await.is_empty());
}

#[tokio::test]
async fn failure_notices_are_sent_after_the_last_retry_and_once_on_recovery() {
    let receiver = Receiver::start().await;
    let notify = receiver.url("/notices");
    let app = TestApp::spawn_with(|c| c.settings.notify_url = Some(notify.parse().unwrap())).await;
    receiver.script("/fails", vec![Scripted::status(500), Scripted::status(500)]);
    let mut body = job(&receiver.url("/fails"));
    body["max_retries"] = json!(1);
    body["failure_notify"] = json!(true);
    let created = app.create_job(body).await;
    let id = created["id"].as_str().unwrap();
    trigger(&app, id).await;
    let notices = receiver
        .wait_for("/notices", 1, Duration::from_secs(10))
        .await;
    let n: Value = serde_json::from_str(&notices[0].body).unwrap();
    assert_eq!(n["event"], "job_failed");
    assert_eq!(n["job_id"], id);
    assert_eq!(n["attempts"], 2);
    assert_eq!(n["error"], "HTTP 500");
    assert_eq!(receiver.received("/fails").len(), 2);

    trigger(&app, id).await;
    let notices = receiver
        .wait_for("/notices", 2, Duration::from_secs(10))
        .await;
    let n: Value = serde_json::from_str(&notices[1].body).unwrap();
    assert_eq!(n["event"], "job_recovered");
    trigger(&app, id).await;
    app.wait_for_executions(id, 4, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received("/notices").len(),
        2,
        "recovery is announced once"
    );
}

#[tokio::test]
async fn success_rules_decide_what_succeeds() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    crate::scenarios::success_rules_decide_what_succeeds(&app, &receiver, async || {}).await;
}

#[tokio::test]
async fn an_exponential_backoff_doubles_each_wait_up_to_its_cap() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    // The waits are the gaps between the receiver's requests (the wall clock): a base of a
    // second leaves a second between the 3× cap and 4×, far more than a loaded machine adds.
    let waits = async |id: &str| {
        let e = runs(&app, id, 4, Duration::from_secs(20)).await;
        assert_eq!(e[3]["status"], "success");
        let got = receiver.received("/flaky");
        got.windows(2)
            .map(|w| (w[1].at - w[0].at).to_std().unwrap())
            .collect()
    };
    crate::scenarios::an_exponential_backoff_doubles_each_wait_up_to_its_cap(
        &app, &receiver, 1000, waits,
    )
    .await;
}

#[tokio::test]
async fn a_failure_streak_notifies_and_disables() {
    let target = Receiver::start().await;
    let notices = Receiver::start().await;
    let url = notices.url("/notices");
    let app = TestApp::spawn_with(|c| c.settings.notify_url = Some(url.parse().unwrap())).await;
    crate::scenarios::a_failure_streak_notifies_and_disables(&app, &target, &notices, async || {})
        .await;
}

#[tokio::test]
async fn a_backfill_runs_the_missed_times_once() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    crate::scenarios::a_backfill_runs_the_missed_times_once(
        &app,
        &receiver,
        chrono::Utc::now(),
        async || {},
    )
    .await;
}

#[tokio::test]
async fn notices_go_to_the_jobs_url_signed_in_slacks_format() {
    let target = Receiver::start().await;
    let app = TestApp::spawn().await;
    let teams = app.app.as_ref().unwrap().teams();
    crate::scenarios::notices_go_to_the_jobs_url_signed_in_slacks_format(
        &app,
        teams.as_ref(),
        &target,
        async || {},
    )
    .await;
}

#[tokio::test]
async fn overlapping_runs_are_skipped_or_buffered() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    crate::scenarios::overlapping_runs_are_skipped_or_buffered(&app, &receiver, async || {}).await;
}

#[tokio::test]
async fn jitter_moves_runs_within_bounds_and_next_run_at_shows_it() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    crate::scenarios::jitter_moves_runs_within_bounds_and_next_run_at_shows_it(
        &app,
        &receiver,
        now,
        async |_, _, _| {},
        async || {},
    )
    .await;
}
