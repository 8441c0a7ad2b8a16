//! Measures how late scheduled runs reach their target, on the embedded server.
//!
//! cargo run --release -p krafter --example lateness -- light [SECONDS]
//!     50 jobs (20 × `* * * * *`, 20 × every_30s, 10 × every_1m) for SECONDS (default 125).
//! cargo run --release -p krafter --example lateness -- burst [JOBS]
//!     JOBS `once` jobs (default 10000) all due in the same second.
//! cargo run --release -p krafter --example lateness -- burst-cron [JOBS]
//!     JOBS `* * * * *` jobs (default 10000): all fire at the next minute boundaries.
//!
//! Lateness = arrival at the sink − the run's scheduled time. Prints a table; asserts nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use krafter_shared::domain::{Scope, Scopes, TeamId};
use krafter_shared::embedded::{Database, Embedded, EmbeddedConfig, create_key};
use serde_json::{Value, json};

type Arrivals = Arc<Mutex<Vec<(String, String, DateTime<Utc>)>>>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("light");
    let n: Option<usize> = args.get(1).and_then(|s| s.parse().ok());
    let arrivals: Arrivals = Arc::default();
    let sink = start_sink(arrivals.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Embedded::start(EmbeddedConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        database: Database::File(dir.path().join("bench.db")),
        rate_limit: 10_000_000,
        max_jobs_per_team: 1_000_000,
        bootstrap_key: false,
        ..EmbeddedConfig::default()
    })
    .await
    .unwrap();
    let keys = app.keys();
    let (key, _) = create_key(
        keys.as_ref(),
        TeamId::parse("bench").unwrap(),
        Scopes::new(vec![Scope::Write]),
        None,
    )
    .await
    .unwrap();
    let api = Api {
        base: format!("http://{}/api/v1/cron", app.local_addr()),
        key: key.as_str().to_owned(),
        client: reqwest::Client::new(),
    };
    match mode {
        "burst" => burst(&api, &sink, &arrivals, n.unwrap_or(10_000), false).await,
        "burst-cron" => burst(&api, &sink, &arrivals, n.unwrap_or(10_000), true).await,
        _ => light(&api, &sink, &arrivals, n.unwrap_or(125)).await,
    }
    app.shutdown().await;
}

struct Api {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl Api {
    async fn create(&self, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}/jobs", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().await.unwrap()["data"].clone()
    }

    async fn executions(&self, job: &str) -> Vec<Value> {
        let r = self
            .client
            .get(format!("{}/jobs/{job}/executions?limit=100", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["data"]
            .as_array()
            .unwrap()
            .clone()
    }
}

async fn start_sink(arrivals: Arrivals) -> String {
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let arrivals = arrivals.clone();
        async move {
            let at = Utc::now();
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            arrivals
                .lock()
                .unwrap()
                .push((h("x-krafter-job-id"), h("x-krafter-execution-id"), at));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sink", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn light(api: &Api, sink: &str, arrivals: &Arrivals, seconds: usize) {
    let mut jobs = Vec::new();
    for (count, kind, schedule) in [
        (20, "cron", "* * * * *"),
        (20, "interval", "every_30s"),
        (10, "interval", "every_1m"),
    ] {
        for i in 0..count {
            let job = api
                .create(
                    json!({"name": format!("{schedule} {i}"), "schedule_type": kind,
                    "schedule": schedule, "url": sink}),
                )
                .await;
            jobs.push(job["id"].as_str().unwrap().to_owned());
        }
    }
    println!("light load: {} jobs for {seconds} s", jobs.len());
    tokio::time::sleep(Duration::from_secs(seconds as u64)).await;
    let mut scheduled: HashMap<String, DateTime<Utc>> = HashMap::new();
    for job in &jobs {
        for e in api.executions(job).await {
            scheduled.insert(
                e["id"].as_str().unwrap().to_owned(),
                e["scheduled_at"].as_str().unwrap().parse().unwrap(),
            );
        }
    }
    let lateness: Vec<i64> = arrivals
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, exec, at)| scheduled.get(exec).map(|s| (*at - *s).num_milliseconds()))
        .collect();
    report("scheduled runs, light load", lateness, None);
}

async fn burst(api: &Api, sink: &str, arrivals: &Arrivals, n: usize, cron: bool) {
    let lead = chrono::Duration::seconds(15 + (n / 1000) as i64);
    let due = if cron {
        // Create them just after a minute boundary, so they all fire at the next one.
        let now = Utc::now().timestamp();
        let boundary = now - now.rem_euclid(60) + 60;
        let wait = DateTime::from_timestamp(boundary + 1, 0).unwrap() - Utc::now();
        tokio::time::sleep(wait.to_std().unwrap_or_default()).await;
        DateTime::from_timestamp(boundary + 60, 0).unwrap()
    } else {
        Utc::now() + lead
    };
    let started = Instant::now();
    let due_text = due.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let due: DateTime<Utc> = due_text.parse().unwrap();
    let bodies: Vec<Value> = (0..n)
        .map(|i| {
            if cron {
                json!({"name": format!("burst {i}"), "schedule_type": "cron",
                    "schedule": "* * * * *", "url": sink})
            } else {
                json!({"name": format!("burst {i}"), "schedule_type": "once",
                    "schedule": due_text, "url": sink})
            }
        })
        .collect();
    let mut created = 0;
    for chunk in bodies.chunks(64) {
        futures_util::future::join_all(chunk.iter().map(|b| api.create(b.clone()))).await;
        created += chunk.len();
    }
    println!(
        "burst: {created} jobs created in {:.1} s, all due at {due_text}",
        started.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    let count = |a: &Arrivals| {
        let a = a.lock().unwrap();
        a.iter()
            .filter(|(_, _, at)| *at < due + chrono::Duration::seconds(59))
            .count()
    };
    while count(arrivals) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Only the runs planned at `due` (a cron job fires again a minute later).
    let arrived: Vec<_> = arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, at)| *at < due + chrono::Duration::seconds(59))
        .cloned()
        .collect();
    let lateness: Vec<i64> = arrived
        .iter()
        .map(|(_, _, at)| (*at - due).num_milliseconds())
        .collect();
    let last = arrived.iter().map(|a| a.2).max().unwrap_or(due);
    let first = arrived.iter().map(|a| a.2).min().unwrap_or(due);
    let drain = (last - first).num_milliseconds().max(1) as f64 / 1000.0;
    report(
        &format!("burst of {n} due in the same second"),
        lateness,
        Some(arrived.len() as f64 / drain),
    );
}

fn report(what: &str, mut ms: Vec<i64>, rate: Option<f64>) {
    ms.sort_unstable();
    let pct = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!("\n{what}");
    println!(
        "| delivered | lateness p50 | p99 | max | min |{}",
        if rate.is_some() {
            " deliveries/s |"
        } else {
            ""
        }
    );
    if ms.is_empty() {
        println!("nothing delivered");
        return;
    }
    println!(
        "| {} | {} ms | {} ms | {} ms | {} ms |{}",
        ms.len(),
        pct(0.5),
        pct(0.99),
        ms[ms.len() - 1],
        ms[0],
        rate.map(|r| format!(" {r:.0} |")).unwrap_or_default()
    );
}
