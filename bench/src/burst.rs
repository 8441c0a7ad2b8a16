//! N jobs all due at the same second on `krafter serve`: each a daily cron job for the same
//! minute (so it fires once in the run, like a `once` job, and exactly as the cron daemon's
//! line for the comparison does).

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use serde_json::json;

use crate::Settings;
use crate::server::{self, Server};
use crate::sink::Sink;
use crate::stats::{self, Summary, ms, thousands};

pub struct Burst {
    pub n: usize,
    pub delivered: usize,
    pub persisted: usize,
    pub lateness: Summary,
    /// Due time → the last delivery arrived and every attempt was recorded.
    pub drain: Duration,
    /// CPU seconds of the server process over the burst.
    pub cpu: Duration,
    /// Busy CPU of the whole machine over the burst, less the benchmark's own (the sink).
    pub machine_cpu: Duration,
    pub peak_rss_mb: f64,
}

/// The first whole minute at least `lead` from now.
pub fn minute_after(lead: Duration) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::from_std(lead).unwrap();
    let t = t.with_nanosecond(0).unwrap();
    let floor = t - chrono::Duration::seconds(i64::from(t.second()));
    if floor < t {
        floor + chrono::Duration::minutes(1)
    } else {
        floor
    }
}

/// Sleeps until `t` (wall clock).
pub async fn sleep_until(t: DateTime<Utc>) {
    if let Ok(d) = (t - Utc::now()).to_std() {
        tokio::time::sleep(d).await;
    }
}

/// What the server and the machine did between two moments.
pub struct Meter {
    pid: u32,
    cpu: Duration,
    machine: Duration,
    own: Duration,
}

impl Meter {
    pub fn start(pid: u32, children: bool) -> Self {
        let (cpu, waited) = stats::cpu(pid);
        Self {
            pid,
            cpu: if children { cpu + waited } else { cpu },
            machine: stats::machine_busy(),
            own: stats::self_cpu(),
        }
    }

    /// (process CPU, machine CPU less this benchmark's own) since `start`.
    pub fn read(&self, children: bool) -> (Duration, Duration) {
        let (cpu, waited) = stats::cpu(self.pid);
        let cpu = if children { cpu + waited } else { cpu };
        let machine = stats::machine_busy().saturating_sub(self.machine);
        let own = stats::self_cpu().saturating_sub(self.own);
        (cpu.saturating_sub(self.cpu), machine.saturating_sub(own))
    }
}

/// The jobs of a burst: Krafter's defaults, or job policies that the executor must apply
/// to every run (an overlap marker written with each attempt and released at its end, and
/// both success rules judged on each response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jobs {
    Default,
    Policies,
}

pub async fn run(settings: &Settings, sink: &Sink, n: usize, jobs: Jobs) -> Burst {
    eprintln!("burst: {n} jobs ({jobs:?}) due at the same second on krafter serve");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(settings, dir.path());
    let due = minute_after(Duration::from_secs(10) + Duration::from_millis(n as u64));
    let prefix = format!("/burst/{n}/{jobs:?}/");
    let bodies = (0..n)
        .map(|i| {
            let mut job = json!({
                "name": format!("burst {i}"),
                "schedule_type": "cron",
                "schedule": format!("{} {} * * *", due.minute(), due.hour()),
                "timezone": "UTC",
                "url": format!("{}{prefix}{i}", sink.base),
                "method": "POST",
                "body": "{\"hello\":\"bench\"}",
            });
            if jobs == Jobs::Policies {
                job["overlap"] = json!("skip");
                job["expect_status"] = json!(["200", "204"]);
                job["expect_body"] = json!("^ok$");
            }
            job
        })
        .collect();
    server.create_jobs(bodies).await;
    assert!(
        Utc::now() < due - chrono::Duration::seconds(2),
        "creating the jobs took past their due time; nothing to measure"
    );
    eprintln!("  all due at {due}");
    sleep_until(due - chrono::Duration::seconds(2)).await;
    stats::reset_peak_rss(server.pid());
    let meter = Meter::start(server.pid(), false);
    let mark = sink.mark();
    sleep_until(due).await;
    let delivered = sink
        .wait_for(mark, &prefix, n, Duration::from_secs(180))
        .await;
    let mut persisted = 0;
    let mut recorded_at = Utc::now();
    for _ in 0..3_000 {
        persisted = server::succeeded(&server.db, Some(due.timestamp()));
        recorded_at = Utc::now();
        if persisted >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu, machine_cpu) = meter.read(false);
    let peak_rss_mb = stats::peak_rss_mb(server.pid());
    let arrivals = sink.since(mark, &prefix);
    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(due);
    let drain = (last.max(recorded_at) - due).to_std().unwrap_or_default();
    let lateness = Summary::new(
        arrivals
            .iter()
            .map(|a| (a.at - due).num_microseconds().unwrap() as f64 / 1000.0)
            .collect(),
    );
    server.stop();
    let b = Burst {
        n,
        delivered,
        persisted,
        lateness,
        drain,
        cpu,
        machine_cpu,
        peak_rss_mb,
    };
    eprintln!(
        "  delivered {delivered}, recorded {persisted}, p99 {}, drained in {:.2} s",
        ms(b.lateness.pct(0.99)),
        drain.as_secs_f64()
    );
    b
}

impl Burst {
    pub fn per_second(&self) -> f64 {
        self.persisted as f64 / self.drain.as_secs_f64().max(0.001)
    }

    /// CPU seconds per 1,000 executions.
    pub fn cpu_per_1000(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1000.0 / self.delivered.max(1) as f64
    }
}

pub fn table(bursts: &[Burst], jobs: Jobs) -> String {
    let title = match jobs {
        Jobs::Default => {
            "## Burst: N jobs due at the same second (krafter serve, SQLite, default settings)"
        }
        Jobs::Policies => {
            "## Burst with job policies: `overlap: \"skip\"`, `expect_status`, `expect_body` on every job"
        }
    };
    let mut t = format!(
        "{title}\n\n\
         | jobs | delivered | recorded | lateness p50 | p99 | max | time to drain | executions/s | \
         CPU s / 1,000 (server) | CPU s / 1,000 (machine) | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for b in bursts {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} s | {} | {:.3} | {:.3} | {:.0} MB |\n",
            thousands(b.n as f64),
            thousands(b.delivered as f64),
            thousands(b.persisted as f64),
            ms(b.lateness.pct(0.5)),
            ms(b.lateness.pct(0.99)),
            ms(b.lateness.max()),
            b.drain.as_secs_f64(),
            thousands(b.per_second()),
            b.cpu_per_1000(b.cpu),
            b.cpu_per_1000(b.machine_cpu),
            b.peak_rss_mb,
        ));
    }
    t
}
