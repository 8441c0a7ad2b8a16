//! Online backups of the embedded store, and restoring one.
//!
//! A backup is SQLite's online backup API copying every page in one step, inside one read
//! transaction: the copy is one consistent moment of the store. In WAL mode a reader never
//! blocks the writer, so a running server goes on firing while the copy is made (it only
//! keeps the WAL from being checkpointed past that moment until the copy ends). The copy is
//! written beside the target, checked (`PRAGMA integrity_check`), and renamed into place.
//!
//! A restore copies a checked backup over the store, holding the store's lock file: it is
//! refused while a server holds the store. The server started on it afterwards recovers as
//! after any stop (attempts left in flight are recorded as interrupted, queued runs are
//! delivered); what happened after the backup was taken is not in it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{LockError, MIGRATIONS, StoreLock, restrict};

/// What a backup or restore could not do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already: choose another file, or remove it first")]
    TargetExists(PathBuf),
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{path} is not a healthy Krafter Cron database: {detail}")]
    NotAStore { path: PathBuf, detail: String },
    #[error("the store is in use: stop the server first")]
    InUse(#[from] LockError),
    #[error("SQLite failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("file system")]
    Io(#[from] std::io::Error),
}

/// What a backup made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupReport {
    pub pages: i32,
    pub bytes: u64,
    /// How long the copy held its read transaction.
    pub copying: Duration,
}

/// Copies the store at `db` into a new file `to`, consistently, while a server may use it.
pub fn backup(db: &Path, to: &Path) -> Result<BackupReport, BackupError> {
    if !db.exists() {
        return Err(BackupError::Missing(db.to_owned()));
    }
    if to.exists() {
        return Err(BackupError::TargetExists(to.to_owned()));
    }
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(Duration::from_secs(10))?;
    let partial = sibling(to, ".partial");
    let _ = std::fs::remove_file(&partial);
    let mut copy = Connection::open(&partial)?;
    restrict(&partial, 0o600).map_err(|e| std::io::Error::other(e.to_string()))?;
    let started = Instant::now();
    let pages = {
        let b = rusqlite::backup::Backup::new(&source, &mut copy)?;
        // Every page in one step: one read transaction, one consistent moment.
        b.step(-1)?;
        b.progress().pagecount
    };
    let copying = started.elapsed();
    check(&copy, &partial)?;
    drop(copy);
    std::fs::rename(&partial, to)?;
    Ok(BackupReport {
        pages,
        bytes: std::fs::metadata(to)?.len(),
        copying,
    })
}

/// Puts the backup `from` in place of the store at `db`. Refused while a server holds the
/// store, and for a file that is not a healthy store this build understands.
pub fn restore(from: &Path, db: &Path) -> Result<(), BackupError> {
    if !from.exists() {
        return Err(BackupError::Missing(from.to_owned()));
    }
    let backup = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    check(&backup, from)?;
    let _lock = StoreLock::acquire(db)?;
    let mut store = Connection::open(db)?;
    restrict(db, 0o600).map_err(|e| std::io::Error::other(e.to_string()))?;
    store.busy_timeout(Duration::from_secs(10))?;
    {
        let b = rusqlite::backup::Backup::new(&backup, &mut store)?;
        b.step(-1)?;
    }
    store.pragma_update(None, "journal_mode", "WAL")?;
    Ok(())
}

/// A Krafter store: intact, with a schema version this build knows.
fn check(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let bad = |detail: String| BackupError::NotAStore {
        path: path.to_owned(),
        detail,
    };
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    if integrity != "ok" {
        return Err(bad(integrity));
    }
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| bad(e.to_string()))?;
    let jobs: Result<i64, _> = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs'",
        [],
        |r| r.get(0),
    );
    match (version, jobs) {
        (0, _) | (_, Ok(0)) => Err(bad("it has no Krafter schema".into())),
        (v, _) if v > MIGRATIONS.len() => Err(bad(format!(
            "its schema (version {v}) is newer than this build's ({})",
            MIGRATIONS.len()
        ))),
        (_, Err(e)) => Err(bad(e.to_string())),
        _ => Ok(()),
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}
