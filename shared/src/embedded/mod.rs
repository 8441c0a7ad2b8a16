//! Krafter Cron embedded: the API, the scheduler and the executor in one process, on one
//! SQLite file. `Embedded::start` is the whole application as a value: the binary and the
//! black-box tests start it the same way.

mod metrics;
mod scheduler;
mod server;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

pub use scheduler::TimerScheduleSync;
pub use server::ServerLimits;

use crate::adapters::dns::SystemResolver;
use crate::adapters::memory::InMemoryRateLimiter;
use crate::adapters::sqlite::{
    LockError, SqliteAuditStore, SqliteDb, SqliteExecutionStore, SqliteIdempotencyStore,
    SqliteJobStore, SqliteKeyStore, SqliteRunQueue, SqliteTeamStore, StoreLock,
};
use crate::assembly::{Assembly, Backend, ExecutorMode};
use crate::domain::{PlainKey, Scope, Scopes, SigningSecret, TeamId};
use crate::executor::{NoticeDelivery, SIGNING_SECRET_CACHE};
use crate::ports::{
    AuditStore, Clock, ExecutionStore, IdempotencyStore, KeyStore, Resolver, StoreError,
    SystemClock, TeamStore,
};
pub use crate::service::teams::{create_key, ensure_team, rotate_signing_secret};
use crate::settings::{KEEP_EXECUTIONS, Mode, Settings};

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Database {
    File(PathBuf),
    /// Nothing survives the process: for tests and trying things out.
    Memory,
}

/// The embedded server's configuration: the [`Settings`] (flags and `KRAFTER_*`
/// variables; see the README for each) and what only code sets (tests, tools).
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    pub settings: Settings,
    /// Where the data lives: the settings' `db` file unless set otherwise.
    pub database: Database,
    /// A run found more than this late (the service was down) is skipped, not replayed.
    pub misfire_grace: Duration,
    /// Create a `cron:write` key for team `default` when the store has no key.
    pub bootstrap_key: bool,
    /// How target names resolve (the system resolver; a stub in tests).
    pub resolver: Arc<dyn Resolver>,
    /// Header timeout, header size and connection limits of the HTTP server.
    pub server_limits: ServerLimits,
    /// How long the executor caches a team's signing secrets: a rotation made by another
    /// process (`krafter teams rotate-secret`) is used within this time.
    pub signing_secret_cache: Duration,
}

impl EmbeddedConfig {
    pub fn new(settings: Settings) -> Self {
        Self {
            database: Database::File(settings.db.clone()),
            settings,
            misfire_grace: Duration::from_secs(60),
            bootstrap_key: true,
            resolver: Arc::new(SystemResolver),
            server_limits: ServerLimits::default(),
            signing_secret_cache: SIGNING_SECRET_CACHE,
        }
    }
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self::new(Settings::defaults(Mode::Embedded))
    }
}

/// The configuration is its settings and more: `config.rate_limit` reads the setting.
impl std::ops::Deref for EmbeddedConfig {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl std::ops::DerefMut for EmbeddedConfig {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not open the database")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Locked(#[from] LockError),
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
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    worker: JoinHandle<()>,
    keys: Arc<dyn KeyStore>,
    teams: Arc<dyn TeamStore>,
    bootstrap: Option<Bootstrap>,
    _lock: Option<StoreLock>,
}

/// What a first start creates for an empty store: a `cron:write` key for team `default`,
/// and that team's webhook signing secret. Shown once.
pub struct Bootstrap {
    pub key: PlainKey,
    pub signing_secret: SigningSecret,
}

/// The SQLite stores of one database.
struct Stores {
    queue: SqliteRunQueue,
    jobs: Arc<SqliteJobStore>,
    executions: Arc<dyn ExecutionStore>,
    keys: Arc<dyn KeyStore>,
    teams: Arc<dyn TeamStore>,
    idempotency: Arc<SqliteIdempotencyStore>,
    audit: Arc<dyn AuditStore>,
}

impl Stores {
    fn of(db: &SqliteDb) -> Self {
        Self {
            queue: SqliteRunQueue::new(db.clone()),
            jobs: Arc::new(SqliteJobStore::new(db.clone())),
            executions: Arc::new(SqliteExecutionStore::new(db.clone())),
            keys: Arc::new(SqliteKeyStore::new(db.clone())),
            teams: Arc::new(SqliteTeamStore::new(db.clone())),
            idempotency: Arc::new(SqliteIdempotencyStore::new(db.clone())),
            audit: Arc::new(SqliteAuditStore::new(db.clone())),
        }
    }
}

impl Embedded {
    pub async fn start(config: EmbeddedConfig) -> Result<Self, StartError> {
        let (db, lock) = open(&config.database)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let stores = Stores::of(&db);
        recover(&stores.queue, clock.now(), config.misfire_grace).await?;
        // Listen before creating a first key, so that a key is never created and then lost
        // to a start that fails.
        let listener = listen(config.settings.bind).await?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.settings.bind,
            source,
        })?;
        let metrics_listener = metrics_listener(config.settings.metrics_bind).await?;
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
        let bootstrap = match config.bootstrap_key {
            true => bootstrap(&stores, clock.now()).await?,
            false => None,
        };
        let changes = Arc::new(Notify::new());
        let assembly = assemble(&config, &stores, clock.clone(), changes.clone());
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(server::serve(
                listener,
                assembly.router(),
                config.server_limits,
                stop_rx.clone(),
                config.settings.shutdown_grace,
            )),
            tokio::spawn(scheduler::run(
                stores.queue.clone(),
                clock.clone(),
                changes,
                config.misfire_grace,
                stop_rx.clone(),
            )),
            tokio::spawn(prune_loop(
                Pruned {
                    executions: stores.executions.clone(),
                    idempotency: stores.idempotency.clone(),
                    audit: stores.audit.clone(),
                },
                clock.clone(),
                config.settings.clone(),
                stop_rx.clone(),
            )),
        ];
        if let Some(listener) = metrics_listener {
            let (queue, clock) = (stores.queue.clone(), clock.clone());
            tasks.push(tokio::spawn(metrics::serve(
                listener,
                queue,
                clock,
                stop_rx.clone(),
            )));
        }
        let worker = worker::Worker {
            queue: stores.queue.clone(),
            executor: assembly.executor()?,
            clock,
            concurrency: config.settings.concurrency.max(1),
            shutdown_grace: config.settings.shutdown_grace,
        };
        let worker = tokio::spawn(worker.run(stop_rx));
        info!(%addr, "krafter is serving");
        Ok(Self {
            addr,
            metrics_addr,
            stop,
            tasks,
            worker,
            keys: stores.keys,
            teams: stores.teams,
            bootstrap,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where Prometheus metrics are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
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

/// Opens the database; a file is locked for this process.
fn open(database: &Database) -> Result<(SqliteDb, Option<StoreLock>), StartError> {
    Ok(match database {
        Database::File(path) => {
            let db = SqliteDb::open(path)?;
            (db, Some(StoreLock::acquire(path)?))
        }
        Database::Memory => (SqliteDb::open_in_memory()?, None),
    })
}

/// The metrics listener, when an address is set; the recorder is installed with it.
async fn metrics_listener(
    addr: Option<SocketAddr>,
) -> Result<Option<tokio::net::TcpListener>, StartError> {
    let Some(addr) = addr else { return Ok(None) };
    metrics::install();
    let listener = metrics::listen(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok(Some(listener))
}

/// Start-up recovery: no lease and no attempt of a previous process can still be live.
async fn recover(
    queue: &SqliteRunQueue,
    now: chrono::DateTime<chrono::Utc>,
    misfire_grace: Duration,
) -> Result<(), StartError> {
    let recovery = queue.recover(now, misfire_grace).await?;
    if recovery != Default::default() {
        warn!(
            leases_released = recovery.leases_released,
            attempts_interrupted = recovery.attempts_interrupted,
            missed_runs_skipped = recovery.missed_runs_skipped,
            "recovered from a stop: queued runs will be delivered, interrupted attempts \
             are not sent again, scheduled runs missed while down are skipped"
        );
    }
    Ok(())
}

async fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// For a store with no key: a `cron:write` key for team `default`, and its secret.
async fn bootstrap(
    stores: &Stores,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Bootstrap>, StartError> {
    if !stores.keys.is_empty().await? {
        return Ok(None);
    }
    let team = TeamId::parse("default").expect("a valid team name");
    let ensured = ensure_team(stores.teams.as_ref(), &team, now).await?;
    let scopes = Scopes::new(vec![Scope::Write]);
    let (key, _) = create_key(stores.keys.as_ref(), team, scopes, None, now).await?;
    Ok(Some(Bootstrap {
        key,
        signing_secret: ensured.secrets.current,
    }))
}

/// The embedded adapters handed to the one assembly: the SQLite stores, the in-process
/// timer as the schedule sync, an in-memory rate limiter.
fn assemble(
    config: &EmbeddedConfig,
    stores: &Stores,
    clock: Arc<dyn Clock>,
    changes: Arc<Notify>,
) -> Assembly {
    let s = &config.settings;
    Assembly {
        backend: Backend {
            jobs: stores.jobs.clone(),
            executions: stores.executions.clone(),
            keys: stores.keys.clone(),
            teams: stores.teams.clone(),
            queue: Arc::new(stores.queue.clone()),
            schedules: Arc::new(TimerScheduleSync::new(changes)),
            limiter: Arc::new(InMemoryRateLimiter::new(s.rate_limit, s.rate_window_secs)),
            idempotency: stores.idempotency.clone(),
            audit: stores.audit.clone(),
            clock,
            resolver: config.resolver.clone(),
        },
        settings: s.clone(),
        executor_mode: ExecutorMode {
            notices: NoticeDelivery::Background,
            signing_secret_cache: config.signing_secret_cache,
        },
    }
}

/// What the hourly pruning keeps in bounds.
struct Pruned {
    executions: Arc<dyn ExecutionStore>,
    idempotency: Arc<SqliteIdempotencyStore>,
    audit: Arc<dyn AuditStore>,
}

/// Every hour: executions and audit entries past their retention, idempotency keys past
/// their 24 hours.
async fn prune_loop(
    stores: Pruned,
    clock: Arc<dyn Clock>,
    settings: crate::settings::Settings,
    mut stop: watch::Receiver<bool>,
) {
    let Pruned {
        executions,
        idempotency,
        audit,
    } = stores;
    let retention = settings.execution_retention;
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => break,
        }
        let cutoff = clock.now() - retention;
        match executions.prune(cutoff, KEEP_EXECUTIONS).await {
            Ok(0) => {}
            Ok(n) => info!(deleted = n, "old executions pruned"),
            Err(e) => error!(error = %e, "could not prune old executions"),
        }
        if let Err(e) = idempotency.prune(clock.now()).await {
            error!(error = %e, "could not prune expired idempotency keys");
        }
        match audit.prune(clock.now() - settings.audit_retention).await {
            Ok(0) => {}
            Ok(n) => info!(deleted = n, "old audit entries pruned"),
            Err(e) => error!(error = %e, "could not prune old audit entries"),
        }
    }
}
