use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};

use super::jobs::get_job;
use super::{SqliteDb, corrupt};
use crate::domain::{
    Admission, AttemptOutcome, Execution, ExecutionFilter, ExecutionId, JobId, RunMarker, TeamId,
    record::ExecutionRecord, time::from_unix,
};
use crate::ports::{
    AttemptStart, BeginOutcome, ExecutionStore, Page, PageRequest, StoreError, StoreResult,
    filtered_page,
};
use tracing::error;

pub struct SqliteExecutionStore {
    db: SqliteDb,
}

impl SqliteExecutionStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

column_list!(EXECUTION_COLUMNS, EXECUTION_FIELDS:
    "id", "team", "job_id", "run_id", "trigger", "scheduled_at", "attempt", "started_at",
    "status", "http_status", "response_body", "error", "duration_ms", "finished_at");

/// `position(EXECUTION_FIELDS, name)`, evaluated when compiling.
macro_rules! col {
    ($name:literal) => {
        const { super::position(EXECUTION_FIELDS, $name) }
    };
}

fn execution_from_row(r: &Row<'_>) -> StoreResult<Execution> {
    let record = ExecutionRecord {
        id: r.get(col!("id"))?,
        team: r.get(col!("team"))?,
        job_id: r.get(col!("job_id"))?,
        run_id: r.get(col!("run_id"))?,
        trigger: r.get(col!("trigger"))?,
        scheduled_at: r.get(col!("scheduled_at"))?,
        attempt: r.get(col!("attempt"))?,
        started_at: r.get(col!("started_at"))?,
        status: r.get(col!("status"))?,
        http_status: r.get(col!("http_status"))?,
        response_body: r.get(col!("response_body"))?,
        error: r.get(col!("error"))?,
        duration_ms: r
            .get::<_, Option<i64>>(col!("duration_ms"))?
            .map(|d| d.max(0) as u64),
        finished_at: r.get(col!("finished_at"))?,
    };
    Execution::try_from(record).map_err(|e| corrupt("execution row", e))
}

static SELECT_ATTEMPT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE run_id = ?1 AND attempt = ?2")
});

/// The statements a batch of begins runs, prepared once for the batch.
struct BeginStatements<'a, 'c> {
    tx: &'a rusqlite::Transaction<'c>,
    existing: rusqlite::CachedStatement<'a>,
    insert: rusqlite::CachedStatement<'a>,
}

impl<'a, 'c> BeginStatements<'a, 'c> {
    fn prepare(tx: &'a rusqlite::Transaction<'c>) -> StoreResult<Self> {
        Ok(Self {
            tx,
            existing: tx.prepare_cached(&SELECT_ATTEMPT)?,
            insert: tx.prepare_cached(
                "INSERT INTO executions (id, team, job_id, run_id, trigger, scheduled_at, \
                 attempt, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
        })
    }

    /// The attempt as recorded before, if it was.
    fn prior(&mut self, m: &crate::domain::RunMessage) -> StoreResult<Option<Execution>> {
        let mut rows = self
            .existing
            .query(params![m.run_id.to_string(), m.attempt])?;
        match rows.next()? {
            Some(r) => Ok(Some(execution_from_row(r)?)),
            None => Ok(None),
        }
    }

    /// Records an attempt as in flight.
    fn insert_start(&mut self, s: &AttemptStart) -> StoreResult<()> {
        let m = &s.message;
        self.insert.execute(params![
            s.execution_id().to_string(),
            m.team.as_str(),
            m.job_id.to_string(),
            m.run_id.to_string(),
            m.trigger.as_str(),
            m.scheduled_at.timestamp(),
            m.attempt,
            s.started_at.timestamp(),
        ])?;
        Ok(())
    }

    fn write_marker(&self, job: JobId, marker: &RunMarker) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE jobs SET run_marker = ?2 WHERE id = ?1")?
            .execute(params![job.to_string(), marker.to_stored()])?;
        Ok(())
    }

    /// One attempt's begin, in the batch's transaction: recorded once per (run, attempt),
    /// for a job that still has the message's generation, as the job's overlap policy
    /// admits it (`Job::admit`; its marker is written in the same transaction).
    fn begin(&mut self, s: &AttemptStart) -> StoreResult<BeginOutcome> {
        let m = &s.message;
        let job = match get_job(self.tx, m.team.as_str(), &m.job_id.to_string()) {
            Ok(job) => job,
            // An unreadable job drops its run rather than every run of the batch.
            Err(e @ StoreError::Corrupt(_)) => {
                error!(job_id = %m.job_id, error = %e,
                    "a stored job could not be read: its run is dropped");
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(prior) = self.prior(m)? {
            return Ok(BeginOutcome::AlreadyRecorded(Box::new(prior)));
        }
        let Some(job) = job.filter(|j| j.generation == m.generation) else {
            return Ok(BeginOutcome::JobGone);
        };
        match job.admit(m, s.started_at) {
            Admission::Start(marker) => {
                let mut job = job;
                if let Some(marker) = marker {
                    self.write_marker(m.job_id, &marker)?;
                    job.run_marker = marker;
                }
                self.insert_start(s)?;
                Ok(BeginOutcome::Started(Box::new(job)))
            }
            Admission::Skip { running } => {
                self.insert_start(s)?;
                let skipped = AttemptOutcome::skipped(running, s.started_at);
                finish(
                    &mut self.tx.prepare_cached(FINISH)?,
                    s.execution_id(),
                    &skipped,
                )?;
                Ok(BeginOutcome::Skipped(Box::new(job)))
            }
            Admission::Buffer(marker) => {
                self.write_marker(m.job_id, &marker)?;
                Ok(BeginOutcome::Buffered)
            }
            Admission::Wait(wait) => Ok(BeginOutcome::Wait(wait)),
        }
    }
}

const FINISH: &str = "UPDATE executions SET status = ?2, http_status = ?3, response_body = ?4, \
     error = ?5, duration_ms = ?6, finished_at = ?7 WHERE id = ?1 AND status IS NULL";

/// Records how an attempt in flight ended (nothing if it had ended already), with the
/// prepared `FINISH` statement.
fn finish(
    update: &mut rusqlite::CachedStatement<'_>,
    id: ExecutionId,
    o: &AttemptOutcome,
) -> StoreResult<()> {
    update.execute(params![
        id.to_string(),
        o.status.as_str(),
        o.http_status,
        o.response_body,
        o.error,
        o.duration_ms as i64,
        o.finished_at.timestamp(),
    ])?;
    Ok(())
}

#[async_trait]
impl ExecutionStore for SqliteExecutionStore {
    async fn begin_attempts(&self, starts: &[AttemptStart]) -> StoreResult<Vec<BeginOutcome>> {
        let starts = starts.to_vec();
        self.db
            .write(move |tx| {
                let mut batch = BeginStatements::prepare(tx)?;
                starts.iter().map(|s| batch.begin(s)).collect()
            })
            .await
    }

    async fn finish_attempts(&self, done: &[(AttemptStart, AttemptOutcome)]) -> StoreResult<()> {
        let done: Vec<(ExecutionId, AttemptOutcome)> = done
            .iter()
            .map(|(s, o)| (s.execution_id(), o.clone()))
            .collect();
        self.db
            .write(move |tx| {
                let mut update = tx.prepare_cached(FINISH)?;
                done.iter()
                    .try_for_each(|(id, o)| finish(&mut update, *id, o))
            })
            .await
    }

    async fn list(
        &self,
        team: &TeamId,
        job: JobId,
        page: PageRequest<ExecutionId>,
        filter: &ExecutionFilter,
    ) -> StoreResult<Page<Execution, ExecutionId>> {
        let team = team.as_str().to_owned();
        let filter = filter.clone();
        let bounded = page.limit.is_some() && filter.is_empty();
        let query = move |c: &rusqlite::Connection| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EXECUTION_COLUMNS} FROM executions \
                     WHERE job_id = ?1 AND team = ?2 AND status IS NOT NULL \
                     AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
            ))?;
            let fetch = |after: Option<ExecutionId>, chunk: Option<usize>| {
                let after = after.map(|a| a.to_string());
                let limit = chunk.map_or(-1, |n| n as i64);
                let mut rows = stmt.query(params![job.to_string(), team, after, limit])?;
                let mut items = Vec::new();
                while let Some(r) = rows.next()? {
                    items.push(execution_from_row(r)?);
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
        };
        // A bounded, unfiltered page is a short read: it runs inline.
        if bounded {
            self.db.lookup(query).await
        } else {
            self.db.read(query).await
        }
    }

    async fn get(
        &self,
        team: &TeamId,
        job: JobId,
        id: ExecutionId,
    ) -> StoreResult<Option<Execution>> {
        let team = team.as_str().to_owned();
        self.db
            .lookup(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {EXECUTION_COLUMNS} FROM executions \
                     WHERE id = ?1 AND job_id = ?2 AND team = ?3"
                ))?;
                let mut rows = stmt.query(params![id.to_string(), job.to_string(), team])?;
                match rows.next()? {
                    Some(r) => Ok(Some(execution_from_row(r)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn delete_for_job(&self, team: &TeamId, job: JobId) -> StoreResult<()> {
        let team = team.as_str().to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM executions WHERE job_id = ?1 AND team = ?2")?
                    .execute(params![job.to_string(), team])?;
                Ok(())
            })
            .await
    }

    async fn prune(&self, older_than: DateTime<Utc>, keep_latest: u32) -> StoreResult<u64> {
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "DELETE FROM executions WHERE status IS NOT NULL AND started_at < ?1 \
                         AND id NOT IN (SELECT k.id FROM executions k \
                            WHERE k.job_id = executions.job_id AND k.status IS NOT NULL \
                            ORDER BY k.id DESC LIMIT ?2)",
                    )?
                    .execute(params![older_than.timestamp(), keep_latest])?;
                Ok(n as u64)
            })
            .await
    }
}

/// Marks every attempt still "in flight" as interrupted: after a restart of the only
/// process that uses the file, none can still be running. Returns how many.
pub(crate) fn interrupt_in_flight(
    tx: &rusqlite::Transaction<'_>,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let mut select =
        tx.prepare_cached("SELECT id, started_at FROM executions WHERE status IS NULL")?;
    let stale: Vec<(String, i64)> = select
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = tx.prepare_cached(
        "UPDATE executions SET status = ?2, error = ?3, duration_ms = ?4, finished_at = ?5 \
         WHERE id = ?1 AND status IS NULL",
    )?;
    for (id, started_at) in &stale {
        let o = AttemptOutcome::interrupted(from_unix(*started_at), now);
        update.execute(params![
            id,
            o.status.as_str(),
            o.error,
            o.duration_ms as i64,
            o.finished_at.timestamp()
        ])?;
    }
    Ok(stale.len())
}
