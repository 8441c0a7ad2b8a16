//! Krafter Cron's performance benchmark. Prints tables; asserts nothing.
//!
//! Run it with `infra/bench/run` (which builds the release binaries, installs wrk, cron and
//! curl if they are missing, and calls this). Sections, all by default:
//!
//!   burst    N jobs (1,000 / 10,000 / 50,000) due at the same second on `krafter serve`
//!   policies the same bursts, every job with `overlap: "skip"` and both success rules
//!   cron     the same bursts fired by Debian's cron daemon, one crontab line per job, curl
//!   steady   100,000 stored jobs, mixed schedules: RSS, start-up to first fire, 5 min lateness
//!   api      GET job, list executions and create job under 64 connections (wrk)
//!   console  the web console's jobs list with 1,000 jobs: page weight, time to answer
//!   hosted   the executor on an SQS batch of 10 (moto), and the cost per million runs
//!
//! `bench --quick` is a shorter run (smaller bursts, 20,000 stored jobs for 1 minute) to try
//! the benchmark itself; `--bursts=1000,5000`, `--jobs=N` (stored jobs) and `--window=SECONDS`
//! (steady) set those sizes. See docs/PERFORMANCE.md for what each figure means.

mod api;
mod burst;
mod console;
mod cron;
mod hosted;
mod server;
mod sink;
mod stats;
mod steady;

use std::path::PathBuf;
use std::time::Duration;

pub struct Settings {
    pub krafter: PathBuf,
    pub bursts: Vec<usize>,
    pub steady_jobs: usize,
    pub steady_window: Duration,
    pub api_window: Duration,
    pub hosted_batches: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut sections: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    const ALL: [&str; 7] = [
        "burst", "policies", "cron", "steady", "api", "console", "hosted",
    ];
    if let Some(bad) = sections.iter().find(|s| !ALL.contains(s)) {
        eprintln!(
            "unknown section {bad:?}; the sections are {}",
            ALL.join(", ")
        );
        std::process::exit(2);
    }
    if sections.is_empty() {
        sections = ALL.to_vec();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let settings = Settings {
        krafter: std::env::var_os("KRAFTER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target/release/krafter")),
        bursts: if quick {
            vec![1_000, 10_000]
        } else {
            vec![1_000, 10_000, 50_000]
        },
        steady_jobs: if quick { 20_000 } else { 100_000 },
        steady_window: Duration::from_secs(if quick { 60 } else { 300 }),
        api_window: Duration::from_secs(if quick { 5 } else { 15 }),
        hosted_batches: if quick { 10 } else { 50 },
    };
    let option = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
    };
    let mut settings = settings;
    if let Some(b) = option("bursts") {
        settings.bursts = b
            .split(',')
            .map(|n| n.parse().expect("--bursts=N,N,..."))
            .collect();
    }
    if let Some(n) = option("jobs") {
        settings.steady_jobs = n.parse().expect("--jobs=N");
    }
    if let Some(s) = option("window") {
        settings.steady_window = Duration::from_secs(s.parse().expect("--window=SECONDS"));
    }
    if !settings.krafter.exists() {
        eprintln!(
            "{} is missing: build it with `cargo build --release -p krafter --bin krafter` \
             (infra/bench/run does)",
            settings.krafter.display()
        );
        std::process::exit(2);
    }
    // Two workers, like the machine's cores: the sink and the load share them with the server.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&settings, &sections));
}

async fn run(settings: &Settings, sections: &[&str]) {
    let sink = sink::Sink::start().await;
    let machine = stats::machine();
    let mut report = Vec::new();
    report.push(format!(
        "# Krafter Cron benchmark, {}\n\nMachine: {machine}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    let mut bursts = Vec::new();
    if sections.contains(&"burst") {
        for &n in &settings.bursts {
            bursts.push(burst::run(settings, &sink, n, burst::Jobs::Default).await);
        }
        report.push(burst::table(&bursts, burst::Jobs::Default));
    }
    if sections.contains(&"policies") {
        let mut with = Vec::new();
        for &n in &settings.bursts {
            with.push(burst::run(settings, &sink, n, burst::Jobs::Policies).await);
        }
        report.push(burst::table(&with, burst::Jobs::Policies));
    }
    if sections.contains(&"cron") {
        let mut crons = Vec::new();
        for &n in &settings.bursts {
            crons.push(cron::run(&sink, n).await);
        }
        report.push(cron::table(&crons, &bursts));
    }
    if sections.contains(&"steady") {
        report.push(steady::run(settings, &sink).await.table());
    }
    if sections.contains(&"api") {
        report.push(api::run(settings, &sink).await);
    }
    if sections.contains(&"console") {
        report.push(console::run(settings, &sink).await);
    }
    if sections.contains(&"hosted") {
        report.push(hosted::run(settings, &sink).await);
    }
    println!("\n{}", report.join("\n"));
}
