use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::{SqliteDb, corrupt};
use crate::domain::{Job, JobId, RunStatus, TeamId, record::JobRecord};
use crate::ports::{
    JobStore, Page, PageRequest, RunResult, StoreError, StoreResult, UpdateOutcome, paginate,
};

pub struct SqliteJobStore {
    db: SqliteDb,
}

impl SqliteJobStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

pub(crate) const JOB_COLUMNS: &str = "id, team, name, schedule_type, schedule, timezone, url, \
    method, headers, body, timeout_ms, max_retries, failure_notify, enabled, generation, \
    version, next_run_at, last_status, last_run_at, created_at, updated_at";

/// Reads a row selected with `JOB_COLUMNS`, checking every value again. Any failure is
/// `Corrupt`: reading a column of a fetched row involves no I/O.
pub(crate) fn job_from_row(r: &Row<'_>) -> StoreResult<Job> {
    decode_job(r).map_err(|e| match e {
        StoreError::Backend(source) => corrupt("job row", source),
        corrupt @ StoreError::Corrupt(_) => corrupt,
    })
}

fn decode_job(r: &Row<'_>) -> StoreResult<Job> {
    let id: String = r.get(0)?;
    let headers: String = r.get(8)?;
    let headers =
        serde_json::from_str(&headers).map_err(|e| corrupt(&format!("job {id} headers"), e))?;
    let record = JobRecord {
        id,
        team: r.get(1)?,
        name: r.get(2)?,
        schedule_type: r.get(3)?,
        schedule: r.get(4)?,
        timezone: r.get(5)?,
        url: r.get(6)?,
        method: r.get(7)?,
        headers,
        body: r.get(9)?,
        timeout_ms: r.get(10)?,
        max_retries: r.get(11)?,
        failure_notify: r.get(12)?,
        enabled: r.get(13)?,
        generation: r.get::<_, i64>(14)? as u64,
        version: r.get::<_, i64>(15)? as u64,
        next_run_at: r.get(16)?,
        last_status: r.get(17)?,
        last_run_at: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
    };
    Job::try_from(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn get_job(conn: &Connection, team: &str, id: &str) -> StoreResult<Option<Job>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1 AND team = ?2"
    ))?;
    let mut rows = stmt.query(params![id, team])?;
    match rows.next()? {
        Some(r) => Ok(Some(job_from_row(r)?)),
        None => Ok(None),
    }
}

/// A job's column values, bound by name: one place for insert and update alike.
struct JobValues {
    r: JobRecord,
    headers: String,
}

impl JobValues {
    fn of(job: &Job) -> Self {
        let r = JobRecord::from(job);
        let headers = serde_json::to_string(&r.headers).unwrap_or_else(|_| "[]".to_owned());
        Self { r, headers }
    }

    /// Executes `stmt` with the values it names (`:column`), plus `:expected_version`.
    fn execute(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
        expected_version: Option<i64>,
    ) -> rusqlite::Result<usize> {
        let r = &self.r;
        let (generation, version) = (r.generation as i64, r.version as i64);
        let all: [(&str, &dyn ToSql); 22] = [
            (":id", &r.id),
            (":team", &r.team),
            (":name", &r.name),
            (":schedule_type", &r.schedule_type),
            (":schedule", &r.schedule),
            (":timezone", &r.timezone),
            (":url", &r.url),
            (":method", &r.method),
            (":headers", &self.headers),
            (":body", &r.body),
            (":timeout_ms", &r.timeout_ms),
            (":max_retries", &r.max_retries),
            (":failure_notify", &r.failure_notify),
            (":enabled", &r.enabled),
            (":generation", &generation),
            (":version", &version),
            (":next_run_at", &r.next_run_at),
            (":last_status", &r.last_status),
            (":last_run_at", &r.last_run_at),
            (":created_at", &r.created_at),
            (":updated_at", &r.updated_at),
            (":expected_version", &expected_version),
        ];
        let mut used = Vec::with_capacity(all.len());
        for (name, value) in all {
            if stmt.parameter_index(name)?.is_some() {
                used.push((name, value));
            }
        }
        stmt.execute(used.as_slice())
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn insert(&self, job: &Job) -> StoreResult<()> {
        static INSERT: LazyLock<String> = LazyLock::new(|| {
            let names: Vec<String> = JOB_COLUMNS.split(", ").map(|c| format!(":{c}")).collect();
            format!(
                "INSERT INTO jobs ({JOB_COLUMNS}) VALUES ({})",
                names.join(", ")
            )
        });
        let values = JobValues::of(job);
        self.db
            .write(move |tx| {
                values.execute(&mut tx.prepare_cached(&INSERT)?, None)?;
                Ok(())
            })
            .await
    }

    async fn get(&self, team: &TeamId, id: JobId) -> StoreResult<Option<Job>> {
        let team = team.as_str().to_owned();
        self.db
            .lookup(move |c| get_job(c, &team, &id.to_string()))
            .await
    }

    async fn list(&self, team: &TeamId, page: PageRequest<JobId>) -> StoreResult<Page<Job, JobId>> {
        let team = team.as_str().to_owned();
        self.db
            .read(move |c| {
                // One more than asked tells whether another page follows.
                let limit = page.limit.map_or(-1, |l| i64::from(l) + 1);
                let after = page.after.map(|a| a.to_string());
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE team = ?1 AND (?2 IS NULL OR id < ?2) \
                     ORDER BY id DESC LIMIT ?3"
                ))?;
                let mut rows = stmt.query(params![team, after, limit])?;
                let mut items = Vec::new();
                while let Some(r) = rows.next()? {
                    items.push(job_from_row(r)?);
                }
                Ok(paginate(items, page.limit, |j| j.id))
            })
            .await
    }

    async fn count(&self, team: &TeamId) -> StoreResult<u64> {
        let team = team.as_str().to_owned();
        self.db
            .lookup(move |c| {
                let n: Option<i64> = c
                    .prepare_cached("SELECT jobs FROM team_job_counts WHERE team = ?1")?
                    .query_row([team], |r| r.get(0))
                    .optional()?;
                Ok(n.unwrap_or(0) as u64)
            })
            .await
    }

    async fn update(&self, job: &Job, expected_version: u64) -> StoreResult<UpdateOutcome> {
        let values = JobValues::of(job);
        self.db
            .write(move |tx| {
                // The run status fields and created_at are not written here.
                let mut stmt = tx.prepare_cached(
                    "UPDATE jobs SET name = :name, schedule_type = :schedule_type, \
                     schedule = :schedule, timezone = :timezone, url = :url, method = :method, \
                     headers = :headers, body = :body, timeout_ms = :timeout_ms, \
                     max_retries = :max_retries, failure_notify = :failure_notify, \
                     enabled = :enabled, generation = :generation, version = :version, \
                     next_run_at = :next_run_at, updated_at = :updated_at \
                     WHERE id = :id AND team = :team AND version = :expected_version",
                )?;
                let changed = values.execute(&mut stmt, Some(expected_version as i64))?;
                if changed == 1 {
                    return Ok(UpdateOutcome::Updated);
                }
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1 AND team = ?2")?
                    .query_row(params![values.r.id, values.r.team], |r| r.get(0))
                    .optional()?;
                Ok(if exists.is_some() {
                    UpdateOutcome::Conflict
                } else {
                    UpdateOutcome::NotFound
                })
            })
            .await
    }

    async fn delete(&self, team: &TeamId, id: JobId) -> StoreResult<bool> {
        let team = team.as_str().to_owned();
        self.db
            .write(move |tx| {
                let id = id.to_string();
                let n = tx
                    .prepare_cached("DELETE FROM jobs WHERE id = ?1 AND team = ?2")?
                    .execute(params![id, team])?;
                if n == 1 {
                    // Queued runs of a deleted job would be dropped anyway; remove them now.
                    tx.prepare_cached("DELETE FROM run_queue WHERE job_id = ?1")?
                        .execute([&id])?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn record_run_results(
        &self,
        results: &[RunResult],
    ) -> StoreResult<Vec<Option<Option<RunStatus>>>> {
        let results = results.to_vec();
        self.db
            .write(move |tx| {
                let mut select = tx.prepare_cached(
                    "SELECT last_status, last_run_at FROM jobs WHERE id = ?1 AND team = ?2",
                )?;
                let mut update = tx.prepare_cached(
                    "UPDATE jobs SET last_status = ?3, last_run_at = ?4 WHERE id = ?1 AND team = ?2",
                )?;
                let mut out = Vec::with_capacity(results.len());
                for r in &results {
                    let id = r.job_id.to_string();
                    let current: Option<(Option<String>, Option<i64>)> = select
                        .query_row(params![id, r.team.as_str()], |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })
                        .optional()?;
                    let Some((status, last_run_at)) = current else {
                        out.push(None);
                        continue;
                    };
                    let at = r.scheduled_at.timestamp();
                    if last_run_at.is_some_and(|l| l > at) {
                        out.push(None);
                        continue;
                    }
                    update.execute(params![id, r.team.as_str(), r.status.as_str(), at])?;
                    out.push(Some(status.as_deref().and_then(RunStatus::parse)));
                }
                Ok(out)
            })
            .await
    }

    async fn scan(
        &self,
        page: PageRequest<(TeamId, JobId)>,
    ) -> StoreResult<Page<Job, (TeamId, JobId)>> {
        self.db
            .read(move |c| {
                let limit = page.limit.map_or(-1, |l| i64::from(l) + 1);
                let (team, id) = match &page.after {
                    Some((t, i)) => (Some(t.as_str().to_owned()), Some(i.to_string())),
                    None => (None, None),
                };
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE ?1 IS NULL OR (team, id) > (?1, ?2) \
                     ORDER BY team, id LIMIT ?3"
                ))?;
                let mut rows = stmt.query(params![team, id, limit])?;
                let mut items = Vec::new();
                while let Some(r) = rows.next()? {
                    items.push(job_from_row(r)?);
                }
                Ok(paginate(items, page.limit, |j| (j.team.clone(), j.id)))
            })
            .await
    }
}
