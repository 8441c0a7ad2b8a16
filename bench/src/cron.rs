//! What a self-hoster would otherwise use: Debian's cron daemon, one crontab line per job
//! calling curl, fired at the same kind of burst against the same sink.
//!
//! cron runs in a private mount namespace (`unshare -m`) on a crontab of its own: tmpfs over
//! its spool and /etc/cron.d and an empty /etc/crontab, so no system job runs with it and
//! nothing is left behind. It is stopped after the burst.

use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Timelike;

use crate::burst::{Burst, Meter, minute_after, sleep_until};
use crate::sink::Sink;
use crate::stats::{Summary, ms, thousands};

const CRON: &str = "/usr/sbin/cron";
const CURL: &str = "/usr/bin/curl";

pub async fn run(sink: &Sink, n: usize) -> Burst {
    eprintln!("cron + curl: {n} crontab lines due at the same minute");
    for tool in [CRON, CURL] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: `apt-get install cron curl` (infra/bench/run does)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let due = minute_after(Duration::from_secs(15));
    let prefix = format!("/cron/{n}/");
    let mut crontab = String::from("SHELL=/bin/sh\nPATH=/usr/bin:/bin\nMAILTO=\"\"\n");
    for i in 0..n {
        crontab.push_str(&format!(
            "{} {} * * * {CURL} -s -o /dev/null -X POST -H 'Content-Type: application/json' \
             -d '{{\"hello\":\"bench\"}}' {}{prefix}{i}\n",
            due.minute(),
            due.hour(),
            sink.base
        ));
    }
    let tab = dir.path().join("root");
    let empty = dir.path().join("empty");
    std::fs::write(&tab, crontab).unwrap();
    std::fs::write(&empty, "").unwrap();
    let script = r#"
set -e
mkdir -p /var/spool/cron/crontabs /etc/cron.d
mount -t tmpfs -o mode=0730 tmpfs /var/spool/cron/crontabs
mount -t tmpfs tmpfs /etc/cron.d
mount --bind "$2" /etc/crontab
install -m 600 -o root "$1" /var/spool/cron/crontabs/root
exec "$3" -f -L 0
"#;
    let mut cron = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&tab)
        .arg(&empty)
        .arg(CRON)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("cron.log")).unwrap())
        .spawn()
        .expect("start cron in its own mount namespace (needs root)");
    eprintln!("  cron started (pid {}), all due at {due}", cron.id());
    sleep_until(due - chrono::Duration::seconds(2)).await;
    assert!(
        cron.try_wait().unwrap().is_none(),
        "cron exited; see {}",
        dir.path().join("cron.log").display()
    );
    let meter = Meter::start(cron.id(), true);
    let mark = sink.mark();
    sleep_until(due).await;
    // cron + curl manages about a hundred calls a second here: wait long enough for 50,000.
    let patience = Duration::from_secs(180.max(n as u64 / 40));
    let delivered = sink.wait_for(mark, &prefix, n, patience).await;
    let arrivals = sink.since(mark, &prefix);
    // cron reaps its jobs' processes as they end; give the last ones a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu, machine_cpu) = meter.read(true);
    let _ = Command::new("kill")
        .args(["-TERM", &cron.id().to_string()])
        .status();
    let _ = cron.wait();
    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(due);
    let b = Burst {
        n,
        delivered,
        persisted: 0,
        lateness: Summary::new(
            arrivals
                .iter()
                .map(|a| (a.at - due).num_microseconds().unwrap() as f64 / 1000.0)
                .collect(),
        ),
        drain: (last - due).to_std().unwrap_or_default(),
        cpu,
        machine_cpu,
        peak_rss_mb: f64::NAN,
    };
    eprintln!(
        "  delivered {delivered}, p99 {}, drained in {:.2} s, {:.1} CPU s",
        ms(b.lateness.pct(0.99)),
        b.drain.as_secs_f64(),
        cpu.as_secs_f64()
    );
    b
}

pub fn table(crons: &[Burst], krafter: &[Burst]) -> String {
    let mut t = String::from(
        "## Side by side: Debian cron + curl (one crontab line per job), same bursts, same sink\n\n\
         | jobs | system | delivered | lateness p50 | p99 | max | time to drain | \
         CPU ms / execution (process) | (machine) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let row = |t: &mut String, what: &str, b: &Burst| {
        t.push_str(&format!(
            "| {} | {what} | {} | {} | {} | {} | {:.2} s | {:.3} | {:.3} |\n",
            thousands(b.n as f64),
            thousands(b.delivered as f64),
            ms(b.lateness.pct(0.5)),
            ms(b.lateness.pct(0.99)),
            ms(b.lateness.max()),
            b.drain.as_secs_f64(),
            b.cpu_per_1000(b.cpu),
            b.cpu_per_1000(b.machine_cpu),
        ));
    };
    let mut ratios = String::from(
        "\n| jobs | CPU per execution, cron + curl ÷ krafter (process) | (machine) | \
         lateness p99, cron + curl ÷ krafter | max ÷ max |\n|---|---|---|---|---|\n",
    );
    for c in crons {
        if let Some(k) = krafter.iter().find(|k| k.n == c.n) {
            row(&mut t, "krafter", k);
            ratios.push_str(&format!(
                "| {} | {:.0}× | {:.0}× | {:.1}× | {:.1}× |\n",
                thousands(c.n as f64),
                c.cpu_per_1000(c.cpu) / k.cpu_per_1000(k.cpu),
                c.cpu_per_1000(c.machine_cpu) / k.cpu_per_1000(k.machine_cpu),
                c.lateness.pct(0.99) / k.lateness.pct(0.99),
                c.lateness.max() / k.lateness.max(),
            ));
        }
        row(&mut t, "cron + curl", c);
    }
    t.push_str(&ratios);
    t
}
