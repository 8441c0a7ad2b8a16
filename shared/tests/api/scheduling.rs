//! Scheduled runs fire on time, once per scheduled time, and survive a restart.

use std::time::Duration;

use chrono::{DateTime, Utc};
use krafter_shared::embedded::{Database, Embedded};
use serde_json::{Value, json};

use crate::helpers::{Receiver, TestApp, quiet_config};

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A run never reaches its target before its planned time. (How late it is, is measured by
/// the benchmark, not asserted here: see docs/PERFORMANCE.md.)
fn assert_not_early(arrived: DateTime<Utc>, planned: DateTime<Utc>) {
    assert!(
        arrived >= planned,
        "arrived at {arrived}, before its time {planned}"
    );
}

#[tokio::test]
async fn a_once_job_fires_once_at_its_time_and_then_disables_itself() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let when = Utc::now() + chrono::Duration::seconds(3);
    let job = app
        .create_job(json!({
            "name": "one shot",
            "schedule_type": "once",
            "schedule": rfc3339(when),
            "url": receiver.url("/once"),
        }))
        .await;
    let id = job["id"].as_str().unwrap();
    let planned = at(&job["next_run_at"]);
    assert_eq!(rfc3339(planned), rfc3339(when));
    let got = receiver.wait_for("/once", 1, Duration::from_secs(10)).await;
    assert_not_early(got[0].at, planned);
    let e = app.wait_for_executions(id, 1, Duration::from_secs(5)).await;
    assert_eq!(e[0]["trigger"], "schedule");
    assert_eq!(at(&e[0]["scheduled_at"]), planned);
    let after = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(after["enabled"], false);
    assert_eq!(after["next_run_at"], Value::Null);
    assert_eq!(after["last_status"], "success");
    assert_eq!(at(&after["last_run_at"]), planned);
    let r = app.post_empty(&format!("/jobs/{id}/resume")).await;
    r.assert_error(409, "Job schedule has no future run");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received("/once").len(), 1);
}

#[tokio::test]
async fn every_30s_really_fires_every_thirty_seconds() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({
            "name": "half minute",
            "schedule_type": "interval",
            "schedule": "every_30s",
            "url": receiver.url("/30s"),
        }))
        .await;
    let id = job["id"].as_str().unwrap();
    let first = at(&job["next_run_at"]);
    assert_eq!(
        first - at(&job["created_at"]),
        chrono::Duration::seconds(30)
    );
    let got = receiver.wait_for("/30s", 2, Duration::from_secs(70)).await;
    for (i, r) in got.iter().take(2).enumerate() {
        let planned = first + chrono::Duration::seconds(30 * i as i64);
        assert_not_early(r.at, planned);
    }
    let e = app.wait_for_executions(id, 2, Duration::from_secs(5)).await;
    let mut planned: Vec<DateTime<Utc>> = e.iter().map(|e| at(&e["scheduled_at"])).collect();
    planned.sort();
    assert_eq!(
        planned[..2],
        [first, first + chrono::Duration::seconds(30)],
        "runs planned 30 s apart from the first"
    );
    assert_ne!(e[0]["run_id"], e[1]["run_id"]);
    let now = app.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert!(at(&now["next_run_at"]) > Utc::now() - chrono::Duration::seconds(1));
}

#[tokio::test]
async fn a_cron_job_fires_at_the_minute_in_its_timezone() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({
            "name": "every minute in Kolkata",
            "schedule_type": "cron",
            "schedule": "* * * * *",
            "timezone": "Asia/Kolkata",
            "url": receiver.url("/cron"),
        }))
        .await;
    let planned = at(&job["next_run_at"]);
    assert_eq!(planned.timestamp() % 60, 0, "on a minute boundary");
    let got = receiver.wait_for("/cron", 1, Duration::from_secs(75)).await;
    assert_not_early(got[0].at, planned);
}

#[tokio::test]
async fn a_run_due_while_the_server_was_stopped_fires_once_after_restart() {
    let receiver = Receiver::start().await;
    let mut app = TestApp::spawn().await;
    let job = app
        .create_job(json!({
            "name": "due during a restart",
            "schedule_type": "once",
            "schedule": rfc3339(Utc::now() + chrono::Duration::seconds(2)),
            "url": receiver.url("/restart"),
        }))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let key = app.key.clone();
    let path = app.dir.path().join("krafter.db");
    app.shutdown().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        receiver.received("/restart").is_empty(),
        "stopped: nothing fired"
    );

    let mut config = quiet_config();
    config.database = Database::File(path);
    let restarted = Embedded::start(config).await.unwrap();
    let base = format!("http://{}", restarted.local_addr());
    receiver
        .wait_for("/restart", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received("/restart").len(),
        1,
        "once, not lost and not doubled"
    );
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/cron/jobs/{id}/executions"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        1,
        "the key and job survived"
    );
    restarted.shutdown().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_file_is_refused() {
    let app = TestApp::spawn().await;
    let mut config = quiet_config();
    config.database = Database::File(app.dir.path().join("krafter.db"));
    let err = Embedded::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("another krafter process"), "{err}");
}
