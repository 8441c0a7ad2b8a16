//! The embedded backend: one SQLite file (WAL) holds jobs, executions, API keys and the
//! durable run queue. Writes go through one connection (SQLite has one writer anyway) in
//! short `BEGIN IMMEDIATE` transactions; reads use a small pool of their own connections.
//! `synchronous = NORMAL` in WAL mode: a committed transaction survives a crash of the
//! process (`kill -9`); only a power failure may lose the last few.

/// A statement's column list, once: as text for the SQL (`$text`) and as names to read rows
/// by (`$names`, with [`position`]).
macro_rules! column_list {
    ($text:ident, $names:ident: $first:literal $(, $rest:literal)* $(,)?) => {
        const $names: &[&str] = &[$first $(, $rest)*];
        const $text: &str = concat!($first $(, ", ", $rest)*);
    };
}

mod audit;
pub mod backup;
mod executions;
mod idempotency;
mod jobs;
mod keys;
mod queue;
mod teams;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use audit::SqliteAuditStore;
pub use executions::SqliteExecutionStore;
pub use idempotency::SqliteIdempotencyStore;
pub use jobs::SqliteJobStore;
pub use keys::SqliteKeyStore;
pub use queue::{Claimed, Delivery, Recovery, SqliteRunQueue};
pub use teams::SqliteTeamStore;

use crate::ports::{StoreError, StoreResult};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::backend(e)
    }
}

const MAX_READERS: usize = 4;

/// A handle on the database; cheap to clone. Adapters share one.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection there may be.
    reading: Arc<tokio::sync::Semaphore>,
    /// `None` for an in-memory database, whose only connection is the writer.
    path: Option<PathBuf>,
}

impl Inner {
    /// A pooled read connection, if one is free (the caller holds a `reading` permit).
    fn take_reader(&self) -> Option<Connection> {
        self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn give_back(&self, conn: Connection) {
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

impl SqliteDb {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// A directory and file it creates are readable by their owner only: the database holds
    /// the jobs' request headers, which often carry credentials.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
            restrict(dir, 0o700)?;
        }
        let created = !path.exists();
        let conn = Connection::open(path)?;
        if created {
            // SQLite gives its -wal and -shm files the database file's permissions.
            restrict(path, 0o600)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::with_writer(conn, Some(path.to_owned()))
    }

    /// A private in-memory database (tests, tooling).
    pub fn open_in_memory() -> StoreResult<Self> {
        Self::with_writer(Connection::open_in_memory()?, None)
    }

    fn with_writer(conn: Connection, path: Option<PathBuf>) -> StoreResult<Self> {
        Self::configure(&conn)?;
        migrate(&conn)?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Mutex::new(conn),
                readers: Mutex::new(Vec::new()),
                reading: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
                path,
            }),
        })
    }

    fn configure(conn: &Connection) -> rusqlite::Result<()> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    /// Runs `f` in one write transaction on a blocking thread; commits if it returns Ok.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            let started = std::time::Instant::now();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            crate::metrics::store_write(started.elapsed());
            Ok(out)
        })
        .await
    }

    /// A bounded read (a few rows found through an index: a job, a key, a page): run on the
    /// calling thread when a pooled read connection is free, as handing tens of microseconds
    /// of work to a blocking thread and back costs more than the work; otherwise as [`read`].
    ///
    /// [`read`]: Self::read
    pub(crate) async fn lookup<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if self.inner.path.is_some()
            && let Ok(_permit) = self.inner.reading.clone().try_acquire_owned()
            && let Some(conn) = self.inner.take_reader()
        {
            let out = f(&conn);
            self.inner.give_back(conn);
            return out;
        }
        self.read(f).await
    }

    /// Runs `f` on a read connection (a consistent snapshot) on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        // At most MAX_READERS reads at a time, each on a pooled connection: under load a
        // read waits for one rather than opening (and then closing) a connection of its own,
        // which cost more than the read (parsing the schema, preparing statements again).
        let permit = match inner.path {
            Some(_) => Some(
                inner
                    .reading
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(StoreError::backend)?,
            ),
            None => None,
        };
        run_blocking(move || {
            let _permit = permit;
            let Some(path) = &inner.path else {
                let conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
                return f(&conn);
            };
            let conn = match inner.take_reader() {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    Self::configure(&c)?;
                    c
                }
            };
            let out = f(&conn);
            inner.give_back(conn);
            out
        })
        .await
    }
}

/// Why the store's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another krafter process is using the store (its lock file {0} is held)")]
    Held(PathBuf),
    #[error("could not create the lock file {path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One process per database file: `krafter serve` holds this while it runs (a second one on
/// the same file would fire every run twice), and a restore holds it while it writes.
/// Released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StoreLock(#[allow(dead_code)] std::fs::File);

impl StoreLock {
    /// Takes the lock of the store at `db` (`<db>.lock`), or says who holds it.
    pub fn acquire(db: &Path) -> Result<Self, LockError> {
        let mut path = db.as_os_str().to_owned();
        path.push(".lock");
        let path = PathBuf::from(path);
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::File {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held(path)),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::File { path, source }),
        }
    }
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> StoreResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(StoreError::backend)
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> StoreResult<()> {
    Ok(())
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(StoreError::backend)?
}

/// Schema versions, applied in order; `PRAGMA user_version` records the last one applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    team            TEXT NOT NULL,
    name            TEXT NOT NULL,
    schedule_type   TEXT NOT NULL,
    schedule        TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    url             TEXT NOT NULL,
    method          TEXT NOT NULL,
    headers         TEXT NOT NULL,
    body            TEXT,
    timeout_ms      INTEGER NOT NULL,
    max_retries     INTEGER NOT NULL,
    failure_notify  INTEGER NOT NULL,
    enabled         INTEGER NOT NULL,
    generation      INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    next_run_at     INTEGER,
    last_status     TEXT,
    last_run_at     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX jobs_by_team ON jobs (team, id);
CREATE INDEX jobs_due ON jobs (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE executions (
    id              TEXT PRIMARY KEY,
    team            TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    scheduled_at    INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    started_at      INTEGER NOT NULL,
    status          TEXT,
    http_status     INTEGER,
    response_body   TEXT,
    error           TEXT,
    duration_ms     INTEGER,
    finished_at     INTEGER,
    UNIQUE (run_id, attempt)
);
CREATE INDEX executions_by_job ON executions (job_id, id);
CREATE INDEX executions_in_flight ON executions (started_at) WHERE status IS NULL;

CREATE TABLE api_keys (
    hash            TEXT PRIMARY KEY,
    prefix          TEXT NOT NULL,
    team            TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER,
    revoked_at      INTEGER
);
CREATE INDEX api_keys_by_prefix ON api_keys (prefix);

CREATE TABLE run_queue (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    deliver_at_ms   INTEGER NOT NULL,
    lease_until_ms  INTEGER,
    team            TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    scheduled_at    INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    generation      INTEGER NOT NULL
);
CREATE INDEX run_queue_by_delivery ON run_queue (deliver_at_ms);
"#,
    r#"
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;

CREATE TABLE teams (
    team            TEXT PRIMARY KEY,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  INTEGER,
    created_at      INTEGER NOT NULL,
    rotated_at      INTEGER
);
"#,
    // Each team's number of jobs, kept by triggers: the quota check on every create reads
    // one row instead of counting the team's jobs (which grew with the team).
    r#"
CREATE TABLE team_job_counts (
    team            TEXT PRIMARY KEY,
    jobs            INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO team_job_counts (team, jobs) SELECT team, COUNT(*) FROM jobs GROUP BY team;
CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO team_job_counts (team, jobs) VALUES (NEW.team, 1)
        ON CONFLICT (team) DO UPDATE SET jobs = jobs + 1;
END;
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE team_job_counts SET jobs = jobs - 1 WHERE team = OLD.team;
END;
"#,
    // Job policies: retry backoff, success rules (NULL: the default).
    r#"
ALTER TABLE jobs ADD COLUMN retry_backoff TEXT;
ALTER TABLE jobs ADD COLUMN retry_base_ms INTEGER;
ALTER TABLE jobs ADD COLUMN retry_max_ms INTEGER;
ALTER TABLE jobs ADD COLUMN expect_status TEXT;
ALTER TABLE jobs ADD COLUMN expect_body TEXT;
ALTER TABLE jobs ADD COLUMN tags TEXT;
"#,
    // Idempotency keys of mutating API requests, per team, kept 24 h.
    r#"
CREATE TABLE idempotency_keys (
    team            TEXT NOT NULL,
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    status          INTEGER,
    location        TEXT,
    body            TEXT,
    PRIMARY KEY (team, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
"#,
    // Alert policies, failure streaks, pause reasons.
    r#"
ALTER TABLE jobs ADD COLUMN notify_after_failures INTEGER;
ALTER TABLE jobs ADD COLUMN auto_disable_after_failures INTEGER;
ALTER TABLE jobs ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN paused_reason TEXT;
ALTER TABLE jobs ADD COLUMN last_run_id TEXT;
ALTER TABLE jobs ADD COLUMN notify_url TEXT;
ALTER TABLE jobs ADD COLUMN notify_format TEXT;
ALTER TABLE jobs ADD COLUMN starts_at INTEGER;
ALTER TABLE jobs ADD COLUMN ends_at INTEGER;
ALTER TABLE jobs ADD COLUMN catchup_window_s INTEGER;
"#,
    // Overlap and jitter, and the overlap marker (run state, JSON).
    r#"
ALTER TABLE jobs ADD COLUMN overlap TEXT;
ALTER TABLE jobs ADD COLUMN jitter_s INTEGER;
ALTER TABLE jobs ADD COLUMN run_marker TEXT;
"#,
    // The audit log.
    r#"
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    team        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    job_id      TEXT,
    key_prefix  TEXT,
    status      INTEGER NOT NULL,
    request_id  TEXT NOT NULL,
    source      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX audit_log_by_team ON audit_log (team, id);
CREATE INDEX audit_log_by_time ON audit_log (at);
"#,
];

fn migrate(conn: &Connection) -> StoreResult<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database schema (version {current}) is newer than this build understands ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(())
}

/// The position of the column `name` in `columns`, found when compiling (through
/// `const { .. }`: a name that is not a column does not compile). Rows are read by name at
/// the cost of reading by position: a burst decodes thousands of rows, and rusqlite's own
/// lookup by name compares the name with every column's, for every value.
pub(crate) const fn position(columns: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < columns.len() {
        let (column, wanted) = (columns[i].as_bytes(), name.as_bytes());
        if column.len() == wanted.len() {
            let mut j = 0;
            while j < column.len() && column[j] == wanted[j] {
                j += 1;
            }
            if j == column.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("not a column of the statement")
}

/// Decoding helpers shared by the adapters.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TeamId;
    use crate::ports::JobStore;

    #[tokio::test]
    async fn a_job_stored_before_policies_reads_with_the_default_policies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("krafter.db");
        {
            // Schema version 3: the release before job policies.
            let conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..3].iter().enumerate() {
                conn.execute_batch(&format!("{sql}; PRAGMA user_version = {};", i + 1))
                    .unwrap();
            }
            conn.execute(
                "INSERT INTO jobs VALUES ('0190d3f0-0000-7000-8000-000000000001', 'alpha', 'n', \
                 'interval', 'every_5m', 'UTC', 'https://example.com/', 'GET', '[]', NULL, \
                 30000, 3, 0, 1, 0, 1, NULL, NULL, NULL, 0, 0)",
                [],
            )
            .unwrap();
        }
        let jobs = SqliteJobStore::new(SqliteDb::open(&path).unwrap());
        let team = TeamId::parse("alpha").unwrap();
        let page = jobs
            .list(&team, crate::ports::PageRequest::all(), &Default::default())
            .await
            .unwrap();
        let job = &page.items[0];
        assert_eq!(job.spec.retry, crate::domain::RetrySpec::default());
        assert_eq!(job.spec.success, crate::domain::SuccessRule::default());
    }

    #[tokio::test]
    async fn upgrading_a_database_counts_the_jobs_it_already_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("krafter.db");
        {
            // A database as the previous release left it (schema version 2), with jobs.
            let conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS[..2].iter().enumerate() {
                conn.execute_batch(&format!("{sql}; PRAGMA user_version = {};", i + 1))
                    .unwrap();
            }
            for (id, team) in [("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")] {
                conn.execute(
                    "INSERT INTO jobs VALUES (?1, ?2, 'n', 'interval', 'every_5m', 'UTC', \
                     'https://example.com/', 'GET', '{}', NULL, 30000, 0, 0, 1, 1, 1, NULL, \
                     NULL, NULL, 0, 0)",
                    [id, team],
                )
                .unwrap();
            }
        }
        let jobs = SqliteJobStore::new(SqliteDb::open(&path).unwrap());
        let count = |t: &str| {
            let jobs = &jobs;
            let team = TeamId::parse(t).unwrap();
            async move { jobs.count(&team).await.unwrap() }
        };
        assert_eq!(count("alpha").await, 2);
        assert_eq!(count("beta").await, 1);
        assert_eq!(count("gamma").await, 0);
    }
}
