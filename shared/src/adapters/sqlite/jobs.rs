use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use rusqlite::types::Value as SqlValue;

use super::{SqliteDb, corrupt};
use crate::domain::record::{JOB_FIELDS, JobRecord, job_updated_fields};
use crate::domain::{Job, JobFilter, JobId, RunStatus, TeamId};
use crate::ports::{
    InsertOutcome, JobStore, MarkerSwap, Page, PageRequest, RecordedRun, RunResult, StoreError,
    StoreResult, UpdateOutcome, filtered_page, paginate,
};

pub struct SqliteJobStore {
    db: SqliteDb,
}

impl SqliteJobStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

/// The jobs table's columns: the stored fields (`record::JOB_FIELDS`), in that order.
pub(crate) static JOB_COLUMNS: LazyLock<String> = LazyLock::new(|| JOB_FIELDS.join(", "));

static INSERT_JOB: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = JOB_FIELDS.iter().map(|c| format!(":{c}")).collect();
    format!(
        "INSERT INTO jobs ({}) VALUES ({})",
        *JOB_COLUMNS,
        values.join(", ")
    )
});

static UPDATE_JOB: LazyLock<String> = LazyLock::new(|| {
    let set: Vec<String> = job_updated_fields()
        .map(|c| format!("{c} = :{c}"))
        .collect();
    format!(
        "UPDATE jobs SET {} WHERE id = :id AND team = :team AND version = :expected_version",
        set.join(", ")
    )
});

/// `position(&JOB_FIELDS, name)`, evaluated when compiling.
macro_rules! col {
    ($name:literal) => {
        const { super::position(&JOB_FIELDS, $name) }
    };
}

/// Reads a row selected with `JOB_COLUMNS`, by column name, checking every value again.
/// Any failure is `Corrupt`: reading a column of a fetched row involves no I/O.
pub(crate) fn job_from_row(r: &Row<'_>) -> StoreResult<Job> {
    decode_job(r).map_err(|e| match e {
        StoreError::Backend(source) => corrupt("job row", source),
        corrupt @ StoreError::Corrupt(_) => corrupt,
    })
}

fn decode_job(r: &Row<'_>) -> StoreResult<Job> {
    let id: String = r.get(col!("id"))?;
    let headers: String = r.get(col!("headers"))?;
    let headers =
        serde_json::from_str(&headers).map_err(|e| corrupt(&format!("job {id} headers"), e))?;
    let expect_status = json_column(r, col!("expect_status"), &id)?;
    let tags = json_column(r, col!("tags"), &id)?;
    let record = JobRecord {
        id,
        team: r.get(col!("team"))?,
        name: r.get(col!("name"))?,
        schedule_type: r.get(col!("schedule_type"))?,
        schedule: r.get(col!("schedule"))?,
        timezone: r.get(col!("timezone"))?,
        url: r.get(col!("url"))?,
        method: r.get(col!("method"))?,
        headers,
        body: r.get(col!("body"))?,
        timeout_ms: r.get(col!("timeout_ms"))?,
        max_retries: r.get(col!("max_retries"))?,
        failure_notify: r.get(col!("failure_notify"))?,
        enabled: r.get(col!("enabled"))?,
        generation: r.get::<_, i64>(col!("generation"))? as u64,
        version: r.get::<_, i64>(col!("version"))? as u64,
        next_run_at: r.get(col!("next_run_at"))?,
        last_status: r.get(col!("last_status"))?,
        last_run_at: r.get(col!("last_run_at"))?,
        created_at: r.get(col!("created_at"))?,
        updated_at: r.get(col!("updated_at"))?,
        retry_backoff: r.get(col!("retry_backoff"))?,
        retry_base_ms: r.get(col!("retry_base_ms"))?,
        retry_max_ms: r.get(col!("retry_max_ms"))?,
        expect_status,
        expect_body: r.get(col!("expect_body"))?,
        tags,
        notify_after_failures: r.get(col!("notify_after_failures"))?,
        auto_disable_after_failures: r.get(col!("auto_disable_after_failures"))?,
        consecutive_failures: r.get::<_, i64>(col!("consecutive_failures"))?.max(0) as u32,
        paused_reason: r.get(col!("paused_reason"))?,
        last_run_id: r.get(col!("last_run_id"))?,
        notify_url: r.get(col!("notify_url"))?,
        notify_format: r.get(col!("notify_format"))?,
        starts_at: r.get(col!("starts_at"))?,
        ends_at: r.get(col!("ends_at"))?,
        catchup_window_s: r.get(col!("catchup_window_s"))?,
        overlap: r.get(col!("overlap"))?,
        jitter_s: r.get(col!("jitter_s"))?,
        run_marker: r.get(col!("run_marker"))?,
    };
    Job::try_from(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A job's last recorded run end.
struct LastRun {
    status: Option<String>,
    at: Option<i64>,
    streak: i64,
    run_id: Option<String>,
}

/// A column holding JSON text (or NULL).
fn json_column<T: serde::de::DeserializeOwned>(
    r: &Row<'_>,
    column: usize,
    id: &str,
) -> StoreResult<Option<T>> {
    let text: Option<String> = r.get(column)?;
    text.map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| corrupt(&format!("job {id} {}", JOB_FIELDS[column]), e))
}

static GET_JOB: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM jobs WHERE id = ?1 AND team = ?2",
        *JOB_COLUMNS
    )
});

pub(crate) fn get_job(conn: &Connection, team: &str, id: &str) -> StoreResult<Option<Job>> {
    // (The statement's text is made once: a burst reads thousands of jobs.)
    let mut stmt = conn.prepare_cached(&GET_JOB)?;
    let mut rows = stmt.query(params![id, team])?;
    match rows.next()? {
        Some(r) => Ok(Some(job_from_row(r)?)),
        None => Ok(None),
    }
}

/// A job's column values by name (`:column`), from its stored record: one conversion for
/// insert and update alike, so no statement lists the values by hand.
struct JobValues(Vec<(String, SqlValue)>);

impl JobValues {
    fn of(job: &Job) -> Self {
        let record = serde_json::to_value(JobRecord::from(job)).unwrap_or_default();
        let values = JOB_FIELDS
            .iter()
            .map(|f| (format!(":{f}"), sql_value(record.get(*f))))
            .collect();
        Self(values)
    }

    fn get(&self, column: &str) -> Option<&SqlValue> {
        self.0
            .iter()
            .find(|(name, _)| &name[1..] == column)
            .map(|(_, v)| v)
    }

    /// Executes `stmt` with the values it names, plus `:expected_version`.
    fn execute(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
        expected_version: Option<i64>,
    ) -> rusqlite::Result<usize> {
        let expected: SqlValue = expected_version.map_or(SqlValue::Null, SqlValue::Integer);
        let mut used: Vec<(&str, &dyn ToSql)> = Vec::with_capacity(self.0.len() + 1);
        for (name, value) in &self.0 {
            if stmt.parameter_index(name)?.is_some() {
                used.push((name.as_str(), value));
            }
        }
        if stmt.parameter_index(":expected_version")?.is_some() {
            used.push((":expected_version", &expected));
        }
        stmt.execute(used.as_slice())
    }
}

/// A stored record's field as a column value: booleans as 0/1, the header list as JSON.
fn sql_value(v: Option<&serde_json::Value>) -> SqlValue {
    use serde_json::Value as J;
    match v {
        None | Some(J::Null) => SqlValue::Null,
        Some(J::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        Some(J::Number(n)) => n.as_i64().map_or(SqlValue::Null, SqlValue::Integer),
        Some(J::String(s)) => SqlValue::Text(s.clone()),
        Some(other) => SqlValue::Text(other.to_string()),
    }
}

/// Inserts the job unless its team has `max_jobs` already (the count is kept by triggers
/// in `team_job_counts`, read in the same write transaction: exact under concurrency).
fn insert_within_quota(
    tx: &rusqlite::Transaction<'_>,
    values: &JobValues,
    max_jobs: u64,
) -> StoreResult<InsertOutcome> {
    let team = values.get("team").cloned().unwrap_or(SqlValue::Null);
    let count: Option<i64> = tx
        .prepare_cached("SELECT jobs FROM team_job_counts WHERE team = ?1")?
        .query_row([team], |r| r.get(0))
        .optional()?;
    if count.unwrap_or(0).max(0) as u64 >= max_jobs {
        return Ok(InsertOutcome::QuotaExceeded);
    }
    values.execute(&mut tx.prepare_cached(&INSERT_JOB)?, None)?;
    Ok(InsertOutcome::Inserted)
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn insert(&self, job: &Job, max_jobs: u64) -> StoreResult<InsertOutcome> {
        let values = JobValues::of(job);
        self.db
            .write(move |tx| insert_within_quota(tx, &values, max_jobs))
            .await
    }

    async fn get(&self, team: &TeamId, id: JobId) -> StoreResult<Option<Job>> {
        let team = team.as_str().to_owned();
        self.db
            .lookup(move |c| get_job(c, &team, &id.to_string()))
            .await
    }

    async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<JobId>,
        filter: &JobFilter,
    ) -> StoreResult<Page<Job, JobId>> {
        let team = team.as_str().to_owned();
        let filter = filter.clone();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {} FROM jobs WHERE team = ?1 AND (?2 IS NULL OR id < ?2) \
                     ORDER BY id DESC LIMIT ?3",
                    *JOB_COLUMNS
                ))?;
                let fetch = |after: Option<JobId>, chunk: Option<usize>| {
                    let after = after.map(|a| a.to_string());
                    let limit = chunk.map_or(-1, |n| n as i64);
                    let mut rows = stmt.query(params![team, after, limit])?;
                    let mut items = Vec::new();
                    while let Some(r) = rows.next()? {
                        items.push(job_from_row(r)?);
                    }
                    Ok(items)
                };
                filtered_page(
                    page,
                    !filter.is_empty(),
                    fetch,
                    |j| j.id,
                    |j| filter.matches(j),
                )
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
                let mut stmt = tx.prepare_cached(&UPDATE_JOB)?;
                let changed = values.execute(&mut stmt, Some(expected_version as i64))?;
                if changed == 1 {
                    return Ok(UpdateOutcome::Updated);
                }
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1 AND team = ?2")?
                    .query_row([values.get("id"), values.get("team")], |r| r.get(0))
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

    async fn swap_run_markers(&self, swaps: &[MarkerSwap]) -> StoreResult<Vec<UpdateOutcome>> {
        let swaps = swaps.to_vec();
        self.db
            .write(move |tx| {
                let mut swap = tx.prepare_cached(
                    "UPDATE jobs SET run_marker = ?4 \
                     WHERE id = ?1 AND team = ?2 AND run_marker IS ?3",
                )?;
                let mut exists =
                    tx.prepare_cached("SELECT 1 FROM jobs WHERE id = ?1 AND team = ?2")?;
                let mut out = Vec::with_capacity(swaps.len());
                for s in &swaps {
                    let (id, team) = (s.job_id.to_string(), s.team.as_str());
                    let (old, new) = (s.expected.to_stored(), s.new.to_stored());
                    if swap.execute(params![id, team, old, new])? == 1 {
                        out.push(UpdateOutcome::Updated);
                        continue;
                    }
                    let found: Option<i64> = exists
                        .query_row(params![id, team], |r| r.get(0))
                        .optional()?;
                    out.push(match found {
                        Some(_) => UpdateOutcome::Conflict,
                        None => UpdateOutcome::NotFound,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn record_run_results(&self, results: &[RunResult]) -> StoreResult<Vec<RecordedRun>> {
        let results = results.to_vec();
        self.db
            .write(move |tx| {
                let mut select = tx.prepare_cached(
                    "SELECT last_status, last_run_at, consecutive_failures, last_run_id FROM jobs \
                     WHERE id = ?1 AND team = ?2",
                )?;
                let mut update = tx.prepare_cached(
                    "UPDATE jobs SET last_status = ?3, last_run_at = ?4, consecutive_failures = ?5, \
                     last_run_id = ?6 WHERE id = ?1 AND team = ?2",
                )?;
                let mut out = Vec::with_capacity(results.len());
                for r in &results {
                    let id = r.job_id.to_string();
                    let current = select
                        .query_row(params![id, r.team.as_str()], |row| {
                            Ok(LastRun {
                                status: row.get("last_status")?,
                                at: row.get("last_run_at")?,
                                streak: row.get("consecutive_failures")?,
                                run_id: row.get("last_run_id")?,
                            })
                        })
                        .optional()?;
                    let at = r.scheduled_at.timestamp();
                    let run_id = r.run_id.to_string();
                    // A later run's end recorded already wins; the same run is recorded once.
                    let applies = |l: &LastRun| {
                        l.at.is_none_or(|t| t < at || (t == at && l.run_id.as_ref() != Some(&run_id)))
                    };
                    let Some(LastRun { status, streak, .. }) = current.filter(applies) else {
                        out.push(RecordedRun::Ignored);
                        continue;
                    };
                    let streak = streak.max(0) as u32;
                    let after = r.streak.apply(streak);
                    update.execute(params![
                        id,
                        r.team.as_str(),
                        r.status.as_str(),
                        at,
                        after,
                        run_id
                    ])?;
                    out.push(RecordedRun::Applied {
                        previous: status.as_deref().and_then(RunStatus::parse),
                        previous_failures: streak,
                    });
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
                    "SELECT {} FROM jobs WHERE ?1 IS NULL OR (team, id) > (?1, ?2) \
                     ORDER BY team, id LIMIT ?3",
                    *JOB_COLUMNS
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_jobs_table_has_exactly_the_stored_fields() {
        let db = SqliteDb::open_in_memory().unwrap();
        let columns = db
            .read(|c| {
                let mut stmt =
                    c.prepare("SELECT name FROM pragma_table_info('jobs') ORDER BY cid")?;
                let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(names.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(columns, JOB_FIELDS);
    }
}
