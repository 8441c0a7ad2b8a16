//! `krafter`: the embedded server and the operator commands. Only wiring: every behaviour
//! lives in `krafter-shared`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use krafter_ops::local::{deliver_queued, fire_due_schedules};
use krafter_ops::provision::provision;
use krafter_shared::adapters::dynamodb::{DynamoKeyStore, DynamoTeamStore};
use krafter_shared::adapters::sqlite::{SqliteDb, SqliteKeyStore, SqliteTeamStore};
use krafter_shared::domain::{ApiKey, KeyPrefix, Scope, Scopes, TeamId, time};
use krafter_shared::embedded::{
    Database, Embedded, EmbeddedConfig, create_key, ensure_team, rotate_signing_secret,
};
use krafter_shared::hosted::{AwsClients, process_env};
use krafter_shared::ports::{KeyStore, TeamStore};
use krafter_shared::targets::TargetPolicy;

/// mimalloc rather than the system allocator: a burst of webhook calls allocates and frees
/// across threads, where glibc's malloc spent a sixth of the server's CPU (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "krafter", version, about = "Krafter Cron: a cron for webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and fire the jobs' webhooks, storing everything in one SQLite file.
    Serve(Box<ServeArgs>),
    /// Issue, list and revoke API keys (embedded SQLite file or hosted DynamoDB table).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Teams' webhook signing secrets: show, rotate.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Local tooling for the hosted (AWS) backend on an emulator.
    #[command(subcommand)]
    Aws(AwsCommand),
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// The embedded server's SQLite file (`--db`).
    Sqlite,
    /// The hosted deployment's DynamoDB keys table (`--keys-table`), through the usual AWS
    /// configuration (profile, region, `AWS_ENDPOINT_URL`).
    Dynamodb,
}

/// Where the keys and teams are.
#[derive(Args)]
struct KeyStoreArgs {
    #[arg(long, env = "KRAFTER_BACKEND", value_enum, default_value = "sqlite")]
    backend: Backend,
    #[command(flatten)]
    db: DbArg,
    /// The hosted keys table (with --backend dynamodb).
    #[arg(long, env = "KRAFTER_KEYS_TABLE")]
    keys_table: Option<String>,
    /// The hosted teams table (with --backend dynamodb), for teams' signing secrets.
    #[arg(long, env = "KRAFTER_TEAMS_TABLE")]
    teams_table: Option<String>,
}

#[derive(Subcommand)]
enum TeamsCommand {
    /// Print the team's webhook signing secret (and the previous one while it still signs).
    ShowSecret {
        #[arg(long)]
        team: String,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
    /// Give the team a new signing secret, printed alone on the last line of stdout. The
    /// previous one keeps signing beside it for 24 hours, so receivers can switch over.
    RotateSecret {
        #[arg(long)]
        team: String,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create the tables, queues and schedule group `template.yaml` declares, on the AWS
    /// endpoint configured (meant for a local emulator: AWS_ENDPOINT_URL). Prints the
    /// functions' environment as `export` lines.
    Init {
        /// Resource names start with this.
        #[arg(long, default_value = "krafter-local")]
        prefix: String,
    },
    /// Do locally what AWS does around the functions: fire due EventBridge schedules into
    /// SQS (an emulator never fires them), and hand queued messages to the executor
    /// function. Reads the functions' KRAFTER_* environment.
    Tick {
        /// The executor function's invoke URL (`cargo lambda watch` serves it).
        #[arg(
            long,
            default_value = "http://127.0.0.1:9000/2015-03-31/functions/executor/invocations"
        )]
        invoke_url: String,
        /// Seconds between rounds.
        #[arg(long, default_value_t = 1)]
        every_secs: u64,
        /// One round (schedules due in the last period), then exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Args)]
struct DbArg {
    /// The SQLite database file.
    #[arg(long, env = "KRAFTER_DB", default_value = "./krafter-data/krafter.db")]
    db: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
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

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; prints it (once) alone on the last line of stdout.
    Create {
        /// The team the key belongs to: 1 to 64 of A-Z a-z 0-9 . _ - (created on first use).
        #[arg(long)]
        team: String,
        /// cron:read or cron:write (repeatable); cron:write also allows reads.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// The key stops working after this many days (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
    /// List keys (prefix, team, scopes, dates, state); never the secrets.
    List {
        /// Only this team's keys.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
    /// Revoke the key whose first 12 characters are PREFIX.
    Revoke {
        /// The key's first 12 characters, as `keys list` shows them (kr_live_ + 4).
        prefix: String,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Keys(cmd) => keys(cmd).await,
        Command::Teams(cmd) => teams(cmd).await,
        Command::Aws(cmd) => aws(cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("error: {e}"));
            let mut source = e.source();
            while let Some(s) = source {
                say(format_args!("  caused by: {s}"));
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// A line for humans on stderr. A closed stderr must not stop the server.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KRAFTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn serve(args: ServeArgs) -> Result<(), AnyError> {
    let config = EmbeddedConfig {
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
        notify_url: args.notify_url,
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        target_policy: if args.deny_private_targets {
            TargetPolicy::DenyPrivate
        } else {
            TargetPolicy::AllowPrivate
        },
        ..EmbeddedConfig::default()
    };
    let app = Embedded::start(config).await?;
    let base = format!("http://{}", app.local_addr());
    say(format_args!(
        "krafter: serving {base}/api/v1/cron (data in {})",
        args.db.db.display()
    ));
    if let Some(first) = app.bootstrap() {
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
    shutdown_signal().await;
    say(format_args!(
        "krafter: stopping (letting attempts in flight finish)"
    ));
    app.shutdown().await;
    Ok(())
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

async fn team_store(store: &KeyStoreArgs) -> Result<Arc<dyn TeamStore>, AnyError> {
    Ok(match store.backend {
        Backend::Sqlite => Arc::new(SqliteTeamStore::new(SqliteDb::open(&store.db.db)?)),
        Backend::Dynamodb => {
            let table = store
                .teams_table
                .as_deref()
                .ok_or("--backend dynamodb needs --teams-table (or KRAFTER_TEAMS_TABLE)")?;
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(DynamoTeamStore::new(
                AwsClients::new(&config).dynamodb,
                table,
            ))
        }
    })
}

async fn teams(cmd: TeamsCommand) -> Result<(), AnyError> {
    let now = chrono::Utc::now();
    match cmd {
        TeamsCommand::ShowSecret { team, store } => {
            let team = TeamId::parse(&team)?;
            let secrets =
                team_store(&store).await?.get(&team).await?.ok_or_else(|| {
                    format!("team {team} has no signing secret yet (create a key)")
                })?;
            if let Some((previous, until)) = &secrets.previous
                && now < *until
            {
                say(format_args!(
                    "previous secret, signing beside the current one until {}: {}",
                    time::format(*until),
                    previous.as_str()
                ));
            }
            say(format_args!("current secret of team {team}:"));
            println!("{}", secrets.current.as_str());
        }
        TeamsCommand::RotateSecret { team, store } => {
            let team = TeamId::parse(&team)?;
            let secrets =
                rotate_signing_secret(team_store(&store).await?.as_ref(), &team, now).await?;
            match &secrets.previous {
                Some((_, until)) => say(format_args!(
                    "team {team} has a new signing secret; the previous one keeps signing \
                     until {} (requests carry both signatures until then):",
                    time::format(*until)
                )),
                None => say(format_args!(
                    "team {team} was created with this signing secret:"
                )),
            }
            println!("{}", secrets.current.as_str());
        }
    }
    Ok(())
}

async fn key_store(store: &KeyStoreArgs) -> Result<Arc<dyn KeyStore>, AnyError> {
    Ok(match store.backend {
        Backend::Sqlite => Arc::new(SqliteKeyStore::new(SqliteDb::open(&store.db.db)?)),
        Backend::Dynamodb => {
            let table = store
                .keys_table
                .as_deref()
                .ok_or("--backend dynamodb needs --keys-table (or KRAFTER_KEYS_TABLE)")?;
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(DynamoKeyStore::new(
                AwsClients::new(&config).dynamodb,
                table,
            ))
        }
    })
}

async fn aws(cmd: AwsCommand) -> Result<(), AnyError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = AwsClients::new(&config);
    match cmd {
        AwsCommand::Init { prefix } => {
            let r = provision(&clients, &prefix).await?;
            for (name, value) in [
                ("KRAFTER_JOBS_TABLE", &r.tables.jobs),
                ("KRAFTER_EXECUTIONS_TABLE", &r.tables.executions),
                ("KRAFTER_KEYS_TABLE", &r.tables.keys),
                ("KRAFTER_TEAMS_TABLE", &r.tables.teams),
                ("KRAFTER_RATE_LIMITS_TABLE", &r.tables.rate_limits),
                ("KRAFTER_RUN_QUEUE_URL", &r.run_queue_url),
                ("KRAFTER_RUN_QUEUE_ARN", &r.run_queue_arn),
                ("KRAFTER_DEAD_LETTER_QUEUE_URL", &r.dead_letter_queue_url),
                ("KRAFTER_DEAD_LETTER_QUEUE_ARN", &r.dead_letter_queue_arn),
                ("KRAFTER_SCHEDULE_GROUP", &r.schedule_group),
                ("KRAFTER_SCHEDULER_ROLE_ARN", &r.scheduler_role_arn),
            ] {
                println!("export {name}='{value}'");
            }
            say(format_args!(
                "krafter: created the hosted resources ({prefix}-*)"
            ));
        }
        AwsCommand::Tick {
            invoke_url,
            every_secs,
            once,
        } => {
            let r = process_env().resources()?;
            let http = reqwest::Client::new();
            // The first round looks back one period, so that `--once` run every period
            // misses nothing.
            let mut after =
                chrono::Utc::now() - chrono::Duration::seconds(every_secs.max(1) as i64);
            loop {
                let until = chrono::Utc::now();
                let fired = fire_due_schedules(&clients, &r.schedule_group, after, until).await?;
                after = until;
                let (mut delivered, mut failed) = (0, 0);
                loop {
                    let (d, f) = deliver_queued(
                        &clients,
                        &r.run_queue_url,
                        &r.run_queue_arn,
                        &invoke_url,
                        &http,
                    )
                    .await?;
                    delivered += d;
                    failed += f;
                    if d == 0 || d == f {
                        break;
                    }
                }
                if fired + delivered > 0 {
                    say(format_args!(
                        "krafter aws tick: {fired} schedule(s) fired, {delivered} message(s) delivered, {failed} failed"
                    ));
                }
                if once {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_secs(every_secs.max(1))).await;
            }
        }
    }
    Ok(())
}

async fn keys(cmd: KeysCommand) -> Result<(), AnyError> {
    match cmd {
        KeysCommand::Create {
            team,
            scopes,
            expires_in_days,
            store,
        } => {
            let team = TeamId::parse(&team)?;
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s)
                        .ok_or_else(|| format!("unknown scope {s:?} (use cron:read or cron:write)"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let keys = key_store(&store).await?;
            let (secrets, created) = ensure_team(
                team_store(&store).await?.as_ref(),
                &team,
                chrono::Utc::now(),
            )
            .await?;
            if created {
                say(format_args!(
                    "created team {team}; its webhook signing secret (also shown by \
                     `krafter teams show-secret --team {team}`): {}",
                    secrets.current.as_str()
                ));
            }
            let expires = expires_in_days.map(|d| chrono::Duration::days(i64::from(d)));
            let (plain, key) =
                create_key(keys.as_ref(), team, Scopes::new(scopes), expires).await?;
            say(format_args!(
                "created key {} for team {} ({}){}; it is shown only this once:",
                key.prefix.as_str(),
                key.team,
                key.scopes.to_text(),
                key.expires_at
                    .map(|t| format!(", expires {}", time::format(t)))
                    .unwrap_or_default()
            ));
            println!("{}", plain.as_str());
        }
        KeysCommand::List { team, store } => {
            let team = team.map(|t| TeamId::parse(&t)).transpose()?;
            let keys = key_store(&store).await?.list(team.as_ref()).await?;
            println!(
                "PREFIX        TEAM                 SCOPES                CREATED               EXPIRES               LAST USED             STATE"
            );
            for k in &keys {
                print_key(k);
            }
            say(format_args!("{} key(s)", keys.len()));
        }
        KeysCommand::Revoke { prefix, store } => {
            let prefix = KeyPrefix::parse(&prefix)
                .ok_or("a key prefix is the key's first 12 characters (kr_live_ + 4)")?;
            let revoked = key_store(&store)
                .await?
                .revoke(&prefix, time::whole_seconds(chrono::Utc::now()))
                .await?;
            if revoked.is_empty() {
                return Err(format!("no key starts with {}", prefix.as_str()).into());
            }
            for k in &revoked {
                say(format_args!(
                    "revoked {} (team {})",
                    k.prefix.as_str(),
                    k.team
                ));
            }
        }
    }
    Ok(())
}

fn print_key(k: &ApiKey) {
    let now = chrono::Utc::now();
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if !k.is_usable_at(now) {
        "expired"
    } else {
        "active"
    };
    println!(
        "{:<13} {:<20} {:<21} {:<21} {:<21} {:<21} {}",
        k.prefix.as_str(),
        k.team.as_str(),
        k.scopes.to_text(),
        time::format(k.created_at),
        k.expires_at
            .map(time::format)
            .unwrap_or_else(|| "never".into()),
        k.last_used_at
            .map(time::format)
            .unwrap_or_else(|| "never".into()),
        state
    );
}
