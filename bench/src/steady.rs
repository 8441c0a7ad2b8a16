//! 100,000 stored jobs with mixed schedules: start-up after a restart, memory, and the
//! lateness of every run over a 5-minute window.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use crate::Settings;
use crate::burst::Meter;
use crate::server::{self, Server};
use crate::sink::Sink;
use crate::stats::{self, Summary, ms, thousands};

pub struct Steady {
    jobs: usize,
    mix: String,
    created_per_s: f64,
    db_mb: f64,
    ready: Duration,
    first_fire: Duration,
    rss_after_start: f64,
    rss_end: f64,
    peak_rss: f64,
    window: Duration,
    caught_up: usize,
    delivered: usize,
    recorded: usize,
    lateness: Summary,
    cpu: Duration,
}

/// The mix, by share of the jobs: (share in ‰, kind, schedule for job i).
fn body(sink: &Sink, i: usize, n: usize) -> Value {
    let slot = i * 1000 / n;
    let (kind, schedule) = match slot {
        0..600 => ("cron", format!("{} {} * * *", i % 60, (i / 60) % 24)),
        600..900 => ("cron", format!("{} * * * *", i % 60)),
        900..950 => ("cron", "*/5 * * * *".to_owned()),
        950..990 => ("interval", "every_1m".to_owned()),
        _ => ("interval", "every_30s".to_owned()),
    };
    json!({
        "name": format!("steady {i}"),
        "schedule_type": kind,
        "schedule": schedule,
        "timezone": if i.is_multiple_of(3) { "Europe/Berlin" } else { "UTC" },
        "url": format!("{}/steady/{i}", sink.base),
        "method": "POST",
        "body": "{\"hello\":\"bench\"}",
    })
}

pub async fn run(settings: &Settings, sink: &Sink) -> Steady {
    let n = settings.steady_jobs;
    eprintln!("steady: {n} stored jobs, mixed schedules");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(settings, dir.path());
    let started = Instant::now();
    server
        .create_jobs((0..n).map(|i| body(sink, i, n)).collect())
        .await;
    let created_per_s = n as f64 / started.elapsed().as_secs_f64();
    server.stop();
    let db_mb = std::fs::metadata(dir.path().join("krafter.db"))
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);

    // Start again just after a minute boundary, so that runs are due (hourly jobs at this
    // minute, every_30s ones): the first fire then measures start-up, not the schedule.
    let boundary = crate::burst::minute_after(Duration::from_secs(1));
    eprintln!("  restarting on the {db_mb:.0} MB database at {boundary} + 1 s");
    crate::burst::sleep_until(boundary + chrono::Duration::seconds(1)).await;
    let mark = sink.mark();
    let restarted = Utc::now();
    let server = Server::start(settings, dir.path());
    let meter = Meter::start(server.pid(), false);
    sink.wait_for(mark, "/steady/", 1, Duration::from_secs(60))
        .await;
    let first_fire = server.spawned.elapsed();
    let ready = server.ready_in;
    let rss_after_start = stats::rss_mb(server.pid());
    eprintln!(
        "  ready in {} ms, first fire {} ms after start; running {} s",
        server.ready_in.as_millis(),
        first_fire.as_millis(),
        settings.steady_window.as_secs()
    );
    tokio::time::sleep(settings.steady_window).await;
    let (cpu, _) = meter.read(false);
    let rss_end = stats::rss_mb(server.pid());
    let peak_rss = stats::peak_rss_mb(server.pid());
    let window_end = Utc::now();
    let arrivals = sink.since(mark, "/steady/");
    // Let the last attempts be recorded before reading their scheduled times.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let scheduled = server::scheduled_times(&server.db);
    let start_s = restarted.timestamp();
    let end_s = window_end.timestamp();
    let mut caught_up = 0;
    let mut late = Vec::new();
    for a in &arrivals {
        let Some(at) = a.execution.as_ref().and_then(|e| scheduled.get(e)) else {
            continue;
        };
        if *at < start_s {
            // Due while the server was down (within the misfire grace): fired at start.
            caught_up += 1;
        } else if *at < end_s {
            late.push((a.at.timestamp_micros() - at * 1_000_000) as f64 / 1000.0);
        }
    }
    let conn = server::open_read_only(&server.db);
    let recorded: i64 = conn
        .query_row(
            "SELECT count(*) FROM executions WHERE status = 'success' \
             AND scheduled_at >= ?1 AND scheduled_at < ?2",
            [start_s, end_s],
            |r| r.get(0),
        )
        .unwrap();
    server.stop();
    let mix = "60% daily cron (`m h * * *`, spread over the day), 30% hourly (`m * * * *`), \
               5% `*/5 * * * *`, 4% `every_1m`, 1% `every_30s`; a third in Europe/Berlin"
        .to_owned();
    Steady {
        jobs: n,
        mix,
        created_per_s,
        db_mb,
        ready,
        first_fire,
        rss_after_start,
        rss_end,
        peak_rss,
        window: settings.steady_window,
        caught_up,
        delivered: late.len(),
        recorded: recorded as usize,
        lateness: Summary::new(late),
        cpu,
    }
}

impl Steady {
    pub fn table(&self) -> String {
        format!(
            "## Steady: {} stored jobs, a restart, then {} min of their runs\n\n\
             Mix: {}.\n\n\
             | figure | value |\n|---|---|\n\
             | jobs created through the API (64 in flight) | {}/s |\n\
             | database file | {:.0} MB |\n\
             | restart: process start → serving the API | {} ms |\n\
             | restart: process start → first webhook arrives | {} ms |\n\
             | RSS after start-up | {:.0} MB |\n\
             | RSS at the end / peak over the window | {:.0} MB / {:.0} MB |\n\
             | runs due while it was down (< 1 s), fired at start | {} |\n\
             | runs due in the window: delivered / recorded | {} / {} |\n\
             | lateness p50 / p99 / max | {} / {} / {} |\n\
             | server CPU over the window | {:.1} s ({:.1}% of one core) |\n",
            thousands(self.jobs as f64),
            self.window.as_secs() / 60,
            self.mix,
            thousands(self.created_per_s),
            self.db_mb,
            self.ready.as_millis(),
            self.first_fire.as_millis(),
            self.rss_after_start,
            self.rss_end,
            self.peak_rss,
            thousands(self.caught_up as f64),
            thousands(self.delivered as f64),
            thousands(self.recorded as f64),
            ms(self.lateness.pct(0.5)),
            ms(self.lateness.pct(0.99)),
            ms(self.lateness.max()),
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 100.0 / self.window.as_secs_f64(),
        )
    }
}
