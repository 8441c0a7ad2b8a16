//! Krafter Cron embedded: the API, the scheduler and the executor in one process, on one
//! SQLite file. `Embedded::start` is the whole application as a value: the binary and the
//! black-box tests start it the same way.

mod scheduler;
mod server;
mod worker;

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub use scheduler::{TimerScheduleSync, plan};
pub use server::ServerLimits;

use crate::adapters::dns::SystemResolver;
use crate::adapters::memory::{CachedTeamStore, InMemoryRateLimiter};
use crate::adapters::sqlite::{
    SqliteDb, SqliteExecutionStore, SqliteJobStore, SqliteKeyStore, SqliteRunQueue, SqliteTeamStore,
};
use crate::api::{ApiState, router};
use crate::domain::{PlainKey, Scope, Scopes, SigningSecret, TeamId};
use crate::executor::{
    Executor, LogNotifier, NoticeDelivery, ReqwestWebhookClient, RetryPolicy, SIGNING_SECRET_CACHE,
    WebhookClientConfig, WebhookNotifier,
};
use crate::ports::{
    Clock, ExecutionStore, KeyStore, Notifier, Resolver, StoreError, SystemClock, TeamStore,
};
use crate::service::JobService;
pub use crate::service::{create_key, ensure_team, rotate_signing_secret};
use crate::targets::{TargetGuard, TargetPolicy};

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Database {
    File(PathBuf),
    /// Nothing survives the process: for tests and trying things out.
    Memory,
}

/// Every setting of the embedded server. The binary fills it from flags and `KRAFTER_*`
/// environment variables; see the README for each.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    pub bind: SocketAddr,
    pub database: Database,
    /// Base of the linear retry backoff (15 s: 15 s, 30 s, 45 s, ...).
    pub retry_backoff: Duration,
    /// Requests per window, per team (and per client address before authentication).
    pub rate_limit: u32,
    pub rate_window_secs: u32,
    pub max_jobs_per_team: u64,
    /// Webhook calls in flight at most.
    pub concurrency: usize,
    /// Executions older than this are deleted, except each job's latest `keep_executions`.
    pub execution_retention: Duration,
    pub keep_executions: u32,
    pub notify_url: Option<url::Url>,
    /// A run found more than this late (the service was down) is skipped, not replayed.
    pub misfire_grace: Duration,
    /// How long shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
    /// Create a `cron:write` key for team `default` when the store has no key.
    pub bootstrap_key: bool,
    /// Whether webhooks may reach private and internal addresses (allowed by default here).
    pub target_policy: TargetPolicy,
    /// How target names resolve (the system resolver; a stub in tests).
    pub resolver: Arc<dyn Resolver>,
    /// Header timeout, header size and connection limits of the HTTP server.
    pub server_limits: ServerLimits,
    /// How long the executor caches a team's signing secrets: a rotation made by another
    /// process (`krafter teams rotate-secret`) is used within this time.
    pub signing_secret_cache: Duration,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: Database::File(PathBuf::from("krafter-data/krafter.db")),
            retry_backoff: Duration::from_secs(15),
            rate_limit: 100,
            rate_window_secs: 60,
            max_jobs_per_team: 1_000,
            concurrency: 1_024,
            execution_retention: Duration::from_secs(30 * 24 * 3600),
            keep_executions: 100,
            notify_url: None,
            misfire_grace: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            bootstrap_key: true,
            target_policy: TargetPolicy::AllowPrivate,
            resolver: Arc::new(SystemResolver),
            signing_secret_cache: SIGNING_SECRET_CACHE,
            server_limits: ServerLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the database")]
    Store(#[from] StoreError),
    #[error("another krafter process is using {0} (its lock file is held)")]
    Locked(PathBuf),
    #[error("could not create the lock file {path}")]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not build the HTTP client")]
    Http(#[from] reqwest::Error),
}

/// A running embedded server.
pub struct Embedded {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    worker: JoinHandle<()>,
    keys: Arc<dyn KeyStore>,
    teams: Arc<dyn TeamStore>,
    bootstrap: Option<Bootstrap>,
    _lock: Option<File>,
}

/// What a first start creates for an empty store: a `cron:write` key for team `default`,
/// and that team's webhook signing secret. Shown once.
pub struct Bootstrap {
    pub key: PlainKey,
    pub signing_secret: SigningSecret,
}

impl Embedded {
    pub async fn start(config: EmbeddedConfig) -> Result<Self, StartError> {
        let (db, lock) = match &config.database {
            Database::File(path) => {
                let db = SqliteDb::open(path)?;
                (db, Some(lock(path)?))
            }
            Database::Memory => (SqliteDb::open_in_memory()?, None),
        };
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let queue = SqliteRunQueue::new(db.clone());
        let recovery = queue.recover(clock.now(), config.misfire_grace).await?;
        if recovery != Default::default() {
            warn!(
                leases_released = recovery.leases_released,
                attempts_interrupted = recovery.attempts_interrupted,
                missed_runs_skipped = recovery.missed_runs_skipped,
                "recovered from a stop: queued runs will be delivered, interrupted attempts \
                 are not sent again, scheduled runs missed while down are skipped"
            );
        }
        let jobs = Arc::new(SqliteJobStore::new(db.clone()));
        let executions: Arc<dyn ExecutionStore> = Arc::new(SqliteExecutionStore::new(db.clone()));
        let keys: Arc<dyn KeyStore> = Arc::new(SqliteKeyStore::new(db.clone()));
        let teams: Arc<dyn TeamStore> = Arc::new(SqliteTeamStore::new(db.clone()));
        let changes = Arc::new(Notify::new());

        // Listen before creating a first key, so that a key is never created and then lost
        // to a start that fails.
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let bootstrap = if config.bootstrap_key && keys.is_empty().await? {
            let team = TeamId::parse("default").expect("a valid team name");
            let (secrets, _) = ensure_team(teams.as_ref(), &team, clock.now()).await?;
            let (plain, _) =
                create_key(keys.as_ref(), team, Scopes::new(vec![Scope::Write]), None).await?;
            Some(Bootstrap {
                key: plain,
                signing_secret: secrets.current,
            })
        } else {
            None
        };

        let targets = TargetGuard::new(config.target_policy, config.resolver.clone());
        let service = JobService {
            jobs: jobs.clone(),
            executions: executions.clone(),
            queue: Arc::new(queue.clone()),
            schedules: Arc::new(TimerScheduleSync::new(changes.clone())),
            clock: clock.clone(),
            max_jobs_per_team: config.max_jobs_per_team,
            targets: targets.clone(),
        };
        let notifier: Arc<dyn Notifier> = match &config.notify_url {
            Some(url) => Arc::new(WebhookNotifier::new(url.clone())?),
            None => Arc::new(LogNotifier),
        };
        let executor = Executor {
            jobs: jobs.clone(),
            executions: executions.clone(),
            queue: Arc::new(queue.clone()),
            client: Arc::new(ReqwestWebhookClient::new(
                &WebhookClientConfig::default(),
                targets,
            )?),
            teams: Arc::new(CachedTeamStore::new(
                teams.clone(),
                config.signing_secret_cache,
                clock.clone(),
            )),
            notifier,
            clock: clock.clone(),
            retry: RetryPolicy {
                base: config.retry_backoff,
                ..RetryPolicy::default()
            },
            notices: NoticeDelivery::Background,
        };
        let api = router(ApiState {
            service,
            keys: keys.clone(),
            limiter: Arc::new(InMemoryRateLimiter::new(
                config.rate_limit,
                config.rate_window_secs,
            )),
            clock: clock.clone(),
        });

        let (stop, stop_rx) = watch::channel(false);

        let tasks = vec![
            tokio::spawn(server::serve(
                listener,
                api,
                config.server_limits,
                stop_rx.clone(),
                config.shutdown_grace,
            )),
            tokio::spawn(scheduler::run(
                queue.clone(),
                clock.clone(),
                changes,
                config.misfire_grace,
                stop_rx.clone(),
            )),
            tokio::spawn(prune_loop(
                executions,
                clock.clone(),
                config.execution_retention,
                config.keep_executions,
                stop_rx.clone(),
            )),
        ];
        let worker = tokio::spawn(
            worker::Worker {
                queue,
                executor,
                clock,
                concurrency: config.concurrency.max(1),
                shutdown_grace: config.shutdown_grace,
            }
            .run(stop_rx),
        );
        info!(%addr, "krafter is serving");
        Ok(Self {
            addr,
            stop,
            tasks,
            worker,
            keys,
            teams,
            bootstrap,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key and signing secret created at start-up for an empty store, if they were.
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    pub fn keys(&self) -> Arc<dyn KeyStore> {
        self.keys.clone()
    }

    pub fn teams(&self) -> Arc<dyn TeamStore> {
        self.teams.clone()
    }

    /// Stops taking work, lets attempts in flight finish (within the grace period), and
    /// returns when everything has stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.worker.await;
        for t in self.tasks {
            let _ = t.await;
        }
        info!("krafter stopped");
    }
}

/// One process per database file: a second `krafter serve` on the same file would fire
/// every run twice. (Called after the database is open, so its directory exists.)
fn lock(db: &std::path::Path) -> Result<File, StartError> {
    let mut path = db.as_os_str().to_owned();
    path.push(".lock");
    let path = PathBuf::from(path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::LockFile {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked(path)),
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::LockFile { path, source }),
    }
}

async fn prune_loop(
    executions: Arc<dyn ExecutionStore>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    keep_latest: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => break,
        }
        let cutoff = clock.now() - retention;
        match executions.prune(cutoff, keep_latest).await {
            Ok(0) => {}
            Ok(n) => info!(deleted = n, "old executions pruned"),
            Err(e) => error!(error = %e, "could not prune old executions"),
        }
    }
}
