//! The audit log in the embedded store: one row per entry, listed newest first by id
//! (UUIDv7: time order) per team.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};

use super::{SqliteDb, corrupt};
use crate::domain::record::AuditRecord;
use crate::domain::{AuditEntry, AuditFilter, AuditId, TeamId};
use crate::ports::{AuditStore, Page, PageRequest, StoreError, StoreResult, filtered_page};
use tokio::sync::{mpsc, oneshot};

/// Entries are written by one task that takes every entry waiting and writes them in one
/// transaction (a group commit): under many concurrent changes, the audit costs a fraction
/// of a write each instead of a write each. `record` returns once its entry is committed.
pub struct SqliteAuditStore {
    db: SqliteDb,
    writer: std::sync::OnceLock<mpsc::UnboundedSender<Pending>>,
}

/// An entry waiting to be written, and who waits for it.
type Pending = (AuditRecord, oneshot::Sender<StoreResult<()>>);

impl SqliteAuditStore {
    pub fn new(db: SqliteDb) -> Self {
        Self {
            db,
            writer: std::sync::OnceLock::new(),
        }
    }

    /// The writer task (started on first use, inside the runtime).
    fn writer(&self) -> &mpsc::UnboundedSender<Pending> {
        self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(self.db.clone(), rx));
            tx
        })
    }
}

/// Writes what is waiting, all of it in one transaction, until every sender is gone.
async fn write_batches(db: SqliteDb, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let (records, waiting): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let written = db
            .write(move |tx| {
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ))?;
                for r in &records {
                    insert.execute(params![
                        r.id, r.team, r.at, r.action, r.job_id, r.key_prefix, r.status,
                        r.request_id, r.source
                    ])?;
                }
                Ok(())
            })
            .await;
        let failed = written.as_ref().err().map(ToString::to_string);
        for w in waiting {
            let _ = w.send(match &failed {
                None => Ok(()),
                Some(e) => Err(StoreError::backend(std::io::Error::other(e.clone()))),
            });
        }
    }
}

column_list!(AUDIT_COLUMNS, AUDIT_FIELDS:
    "id", "team", "at", "action", "job_id", "key_prefix", "status", "request_id", "source");

macro_rules! col {
    ($name:literal) => {
        const { super::position(AUDIT_FIELDS, $name) }
    };
}

fn entry_from_row(r: &Row<'_>) -> StoreResult<AuditEntry> {
    let record = AuditRecord {
        id: r.get(col!("id"))?,
        team: r.get(col!("team"))?,
        at: r.get(col!("at"))?,
        action: r.get(col!("action"))?,
        job_id: r.get(col!("job_id"))?,
        key_prefix: r.get(col!("key_prefix"))?,
        status: r.get(col!("status"))?,
        request_id: r.get(col!("request_id"))?,
        source: r.get(col!("source"))?,
    };
    AuditEntry::try_from(record).map_err(|e| corrupt("audit row", e))
}

#[async_trait]
impl AuditStore for SqliteAuditStore {
    async fn record(&self, entry: &AuditEntry) -> StoreResult<()> {
        let (done, written) = oneshot::channel();
        let gone = || StoreError::backend(std::io::Error::other("the audit writer stopped"));
        self.writer()
            .send((AuditRecord::from(entry), done))
            .map_err(|_| gone())?;
        written.await.map_err(|_| gone())?
    }

    async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<AuditId>,
        filter: &AuditFilter,
    ) -> StoreResult<Page<AuditEntry, AuditId>> {
        let team = team.as_str().to_owned();
        let filter = filter.clone();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE team = ?1 \
                     AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
                ))?;
                let fetch = |after: Option<AuditId>, chunk: Option<usize>| {
                    let after = after.map(|a| a.to_string());
                    let limit = chunk.map_or(-1, |n| n as i64);
                    let mut rows = stmt.query(params![team, after, limit])?;
                    let mut items = Vec::new();
                    while let Some(r) = rows.next()? {
                        items.push(entry_from_row(r)?);
                    }
                    Ok(items)
                };
                filtered_page(
                    page,
                    !filter.is_empty(),
                    fetch,
                    |e| e.id,
                    |e| filter.matches(e),
                )
            })
            .await
    }

    async fn prune(&self, older_than: DateTime<Utc>) -> StoreResult<u64> {
        let cutoff = older_than.timestamp();
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM audit_log WHERE at < ?1")?
                    .execute([cutoff])?;
                Ok(n as u64)
            })
            .await
    }
}
