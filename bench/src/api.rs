//! The API under 64 concurrent connections, driven by wrk (a separate process): GET one job,
//! list a job's executions (a page of the default 20), and create jobs.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::Settings;
use crate::burst::Meter;
use crate::server::{self, Server};
use crate::sink::Sink;
use crate::stats::thousands;

struct Load {
    what: &'static str,
    requests_per_s: f64,
    p50: String,
    p99: String,
    failed: u64,
    server_cpu: f64,
}

fn wrk(server: &Server, path: &str, script: Option<&std::path::Path>, secs: u64) -> String {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c64", &format!("-d{secs}s"), "--latency"])
        .args(["-H", &format!("Authorization: Bearer {}", server.key)]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(format!("{}{path}", server.base))
        .output()
        .expect("wrk is missing: `apt-get install wrk` (infra/bench/run does)");
    assert!(out.status.success(), "wrk failed: {:?}", out);
    String::from_utf8(out.stdout).unwrap()
}

fn load(what: &'static str, out: &str, server_cpu: f64) -> Load {
    let field = |prefix: &str| -> Option<String> {
        out.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_owned())
    };
    let requests_per_s = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let failed = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let errors = field("Socket errors:").is_some();
    Load {
        what,
        requests_per_s,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        failed: failed + u64::from(errors),
        server_cpu,
    }
}

pub async fn run(settings: &Settings, sink: &Sink) -> String {
    eprintln!(
        "api: wrk, 64 connections, {} s per request kind",
        settings.api_window.as_secs()
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(settings, dir.path());
    let far = |i: usize| {
        json!({"name": format!("stored {i}"), "schedule_type": "cron",
            "schedule": "0 0 1 1 *", "url": format!("{}/api/{i}", sink.base)})
    };
    let ids = server.create_jobs((0..10_000).map(far).collect()).await;
    let job = &ids[ids.len() / 2];
    for _ in 0..50 {
        server
            .call(reqwest::Method::POST, &format!("/jobs/{job}/trigger"), None)
            .await;
    }
    for _ in 0..500 {
        if server::succeeded(&server.db, None) >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let script = dir.path().join("create.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.body = [[{}]]\n",
            far(0)
        ),
    )
    .unwrap();
    let secs = settings.api_window.as_secs();
    let mut loads = Vec::new();
    for (what, path, script) in [
        ("GET /jobs/{id}", format!("/jobs/{job}"), None),
        (
            "GET /jobs/{id}/executions (20 of 50)",
            format!("/jobs/{job}/executions"),
            None,
        ),
        (
            "POST /jobs (create)",
            "/jobs".to_owned(),
            Some(script.as_path()),
        ),
    ] {
        let meter = Meter::start(server.pid(), false);
        let out = wrk(&server, &path, script, secs);
        let (cpu, _) = meter.read(false);
        let l = load(what, &out, cpu.as_secs_f64() / secs as f64);
        eprintln!(
            "  {what}: {:.0} req/s, p50 {}, p99 {}",
            l.requests_per_s, l.p50, l.p99
        );
        loads.push(l);
    }
    server.stop();
    let mut t = format!(
        "## API: 64 connections (wrk -t2 -c64 -d{secs}s, on the same 2 cores), \
         10,000 stored jobs\n\n\
         | request | requests/s | latency p50 | p99 | non-2xx or errors | server CPU (cores) |\n\
         |---|---|---|---|---|---|\n"
    );
    for l in loads {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} |\n",
            l.what,
            thousands(l.requests_per_s),
            l.p50,
            l.p99,
            l.failed,
            l.server_cpu
        ));
    }
    t
}
