//! `krafter serve`: the embedded server until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use krafter_shared::embedded::{Bootstrap, Database, Embedded, EmbeddedConfig};
use krafter_shared::targets::TargetPolicy;

use crate::stores::DbArg;
use crate::{AnyError, say};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KRAFTER_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    #[command(flatten)]
    db: DbArg,
    /// Base of the linear retry backoff, in ms (15000: retries after 15 s, 30 s, 45 s, ...).
    #[arg(long, env = "KRAFTER_RETRY_BACKOFF_MS", default_value_t = 15_000,
        value_parser = clap::value_parser!(u64).range(1..))]
    retry_backoff_ms: u64,
    /// API requests allowed per team (or per client address before authentication) per window.
    #[arg(long, env = "KRAFTER_RATE_LIMIT", default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit: u32,
    /// The rate limit window, in seconds.
    #[arg(long, env = "KRAFTER_RATE_LIMIT_WINDOW_SECS", default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..))]
    rate_limit_window_secs: u32,
    /// Most jobs one team may have.
    #[arg(long, env = "KRAFTER_MAX_JOBS_PER_TEAM", default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..))]
    max_jobs_per_team: u64,
    /// Webhook calls in flight at most.
    #[arg(long, env = "KRAFTER_CONCURRENCY", default_value_t = 1_024,
        value_parser = clap::value_parser!(u64).range(1..=100_000))]
    concurrency: u64,
    /// Executions older than this many days are deleted (each job keeps its latest 100).
    #[arg(long, env = "KRAFTER_EXECUTION_RETENTION_DAYS", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..))]
    execution_retention_days: u32,
    /// POST a JSON notice here when a job with failure_notify fails for good, and when it recovers.
    #[arg(long, env = "KRAFTER_NOTIFY_URL")]
    notify_url: Option<url::Url>,
    /// Refuse webhook targets on private, loopback, link-local, metadata and other internal
    /// addresses, checked when a job is saved and again on the address each call connects to.
    /// Off by default, so that local development can call local services.
    #[arg(long, env = "KRAFTER_DENY_PRIVATE_TARGETS")]
    deny_private_targets: bool,
    /// Seconds to wait for attempts in flight when stopping.
    #[arg(long, env = "KRAFTER_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
}

pub async fn serve(args: ServeArgs) -> Result<(), AnyError> {
    let app = Embedded::start(embedded_config(&args)).await?;
    let base = format!("http://{}", app.local_addr());
    say(format_args!(
        "krafter: serving {base}/api/v1/cron (data in {})",
        args.db.db.display()
    ));
    if let Some(first) = app.bootstrap() {
        print_first_key(&base, first);
    }
    shutdown_signal().await;
    say(format_args!(
        "krafter: stopping (letting attempts in flight finish)"
    ));
    app.shutdown().await;
    Ok(())
}

fn embedded_config(args: &ServeArgs) -> EmbeddedConfig {
    EmbeddedConfig {
        bind: args.bind,
        database: Database::File(args.db.db.clone()),
        retry_backoff: Duration::from_millis(args.retry_backoff_ms),
        rate_limit: args.rate_limit,
        rate_window_secs: args.rate_limit_window_secs,
        max_jobs_per_team: args.max_jobs_per_team,
        concurrency: args.concurrency as usize,
        execution_retention: Duration::from_secs(
            u64::from(args.execution_retention_days) * 24 * 3600,
        ),
        notify_url: args.notify_url.clone(),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        target_policy: if args.deny_private_targets {
            TargetPolicy::DenyPrivate
        } else {
            TargetPolicy::AllowPrivate
        },
        ..EmbeddedConfig::default()
    }
}

/// The key and signing secret created for an empty store, with a ready-to-paste `curl`.
fn print_first_key(base: &str, first: &Bootstrap) {
    println!(
        "A cron:write key for team \"default\" was created. It is shown only this once:\n\n  \
         {key}\n\nWebhooks are signed with the team's secret (krafter teams show-secret \
         --team default):\n\n  {secret}\n\nTry it:\n\n  curl -X POST {base}/api/v1/cron/jobs \\\n    \
         -H \"Authorization: Bearer {key}\" \\\n    \
         -H \"Content-Type: application/json\" \\\n    \
         -d '{{\"name\": \"Health Check\", \"schedule_type\": \"interval\", \
         \"schedule\": \"every_5m\", \"url\": \"https://example.com/api/health\", \
         \"method\": \"GET\"}}'\n",
        key = first.key.as_str(),
        secret = first.signing_secret.as_str(),
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
