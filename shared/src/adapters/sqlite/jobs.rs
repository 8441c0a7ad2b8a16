use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params};

use super::{SqliteDb, corrupt};
use crate::domain::{
    Body, HeaderList, HttpMethod, Job, JobId, JobName, JobSpec, MaxRetries, RunStatus, TargetUrl,
    TeamId, TimeoutMs, WebhookSpec, time::from_unix,
};
use crate::ports::{
    JobStore, Page, PageRequest, RunResult, StoreError, StoreResult, UpdateOutcome,
};
use crate::schedule::{Schedule, ScheduleType, Timezone};

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
    let bad = |field: &str, e: &dyn std::fmt::Display| corrupt(&format!("job {id} {field}"), e);
    let team: String = r.get(1)?;
    let kind: String = r.get(3)?;
    let tz: String = r.get(5)?;
    let headers: String = r.get(8)?;
    let headers: Vec<(String, String)> =
        serde_json::from_str(&headers).map_err(|e| bad("headers", &e))?;
    let last_status: Option<String> = r.get(17)?;
    let kind: ScheduleType = kind.parse().map_err(|_| bad("schedule_type", &kind))?;
    let tz = Timezone::parse(&tz).map_err(|e| bad("timezone", &e))?;
    let schedule_text: String = r.get(4)?;
    Ok(Job {
        id: id.parse().map_err(|e| bad("id", &e))?,
        team: TeamId::parse(&team).map_err(|e| bad("team", &e))?,
        spec: JobSpec {
            name: JobName::parse(&r.get::<_, String>(2)?).map_err(|e| bad("name", &e))?,
            schedule: Schedule::parse(kind, &schedule_text, tz).map_err(|e| bad("schedule", &e))?,
            request: WebhookSpec {
                url: TargetUrl::parse(&r.get::<_, String>(6)?).map_err(|e| bad("url", &e))?,
                method: HttpMethod::parse(&r.get::<_, String>(7)?)
                    .map_err(|e| bad("method", &e))?,
                headers: HeaderList::parse(headers).map_err(|e| bad("headers", &e.join(", ")))?,
                body: r
                    .get::<_, Option<String>>(9)?
                    .map(Body::parse)
                    .transpose()
                    .map_err(|e| bad("body", &e))?,
                timeout: TimeoutMs::parse(r.get(10)?).map_err(|e| bad("timeout_ms", &e))?,
            },
            max_retries: MaxRetries::parse(r.get(11)?).map_err(|e| bad("max_retries", &e))?,
            failure_notify: r.get(12)?,
        },
        enabled: r.get(13)?,
        generation: r.get::<_, i64>(14)? as u64,
        version: r.get::<_, i64>(15)? as u64,
        next_run_at: r.get::<_, Option<i64>>(16)?.map(from_unix),
        last_status: match last_status {
            Some(s) => Some(RunStatus::parse(&s).ok_or_else(|| bad("last_status", &s))?),
            None => None,
        },
        last_run_at: r.get::<_, Option<i64>>(18)?.map(from_unix),
        created_at: from_unix(r.get(19)?),
        updated_at: from_unix(r.get(20)?),
    })
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
    id: String,
    team: String,
    name: String,
    schedule_type: &'static str,
    schedule: String,
    timezone: &'static str,
    url: String,
    method: &'static str,
    headers: String,
    body: Option<String>,
    timeout_ms: u32,
    max_retries: u32,
    failure_notify: bool,
    enabled: bool,
    generation: i64,
    version: i64,
    next_run_at: Option<i64>,
    last_status: Option<&'static str>,
    last_run_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl JobValues {
    fn of(job: &Job) -> Self {
        let s = &job.spec;
        let headers: Vec<(&str, &str)> = s.request.headers.iter().collect();
        Self {
            id: job.id.to_string(),
            team: job.team.as_str().to_owned(),
            name: s.name.as_str().to_owned(),
            schedule_type: s.schedule.kind().as_str(),
            schedule: s.schedule.text().to_owned(),
            timezone: s.schedule.timezone().name(),
            url: s.request.url.as_str().to_owned(),
            method: s.request.method.as_str(),
            headers: serde_json::to_string(&headers).unwrap_or_else(|_| "[]".to_owned()),
            body: s.request.body.as_ref().map(|b| b.as_str().to_owned()),
            timeout_ms: s.request.timeout.get(),
            max_retries: s.max_retries.get(),
            failure_notify: s.failure_notify,
            enabled: job.enabled,
            generation: job.generation as i64,
            version: job.version as i64,
            next_run_at: job.next_run_at.map(|t| t.timestamp()),
            last_status: job.last_status.map(|s| s.as_str()),
            last_run_at: job.last_run_at.map(|t| t.timestamp()),
            created_at: job.created_at.timestamp(),
            updated_at: job.updated_at.timestamp(),
        }
    }

    /// Executes `stmt` with the values it names (`:column`), plus `:expected_version`.
    fn execute(
        &self,
        stmt: &mut rusqlite::CachedStatement<'_>,
        expected_version: Option<i64>,
    ) -> rusqlite::Result<usize> {
        let all: [(&str, &dyn ToSql); 22] = [
            (":id", &self.id),
            (":team", &self.team),
            (":name", &self.name),
            (":schedule_type", &self.schedule_type),
            (":schedule", &self.schedule),
            (":timezone", &self.timezone),
            (":url", &self.url),
            (":method", &self.method),
            (":headers", &self.headers),
            (":body", &self.body),
            (":timeout_ms", &self.timeout_ms),
            (":max_retries", &self.max_retries),
            (":failure_notify", &self.failure_notify),
            (":enabled", &self.enabled),
            (":generation", &self.generation),
            (":version", &self.version),
            (":next_run_at", &self.next_run_at),
            (":last_status", &self.last_status),
            (":last_run_at", &self.last_run_at),
            (":created_at", &self.created_at),
            (":updated_at", &self.updated_at),
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
            .read(move |c| get_job(c, &team, &id.to_string()))
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
            .read(move |c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM jobs WHERE team = ?1")?
                    .query_row([team], |r| r.get(0))?;
                Ok(n as u64)
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
                    .query_row(params![values.id, values.team], |r| r.get(0))
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
}

/// Trims the extra row fetched to detect a following page.
pub(crate) fn paginate<T, C>(
    mut items: Vec<T>,
    limit: Option<u32>,
    cursor: impl Fn(&T) -> C,
) -> Page<T, C> {
    let next = match limit {
        Some(l) if items.len() > l as usize => {
            items.truncate(l as usize);
            items.last().map(cursor)
        }
        _ => None,
    };
    Page { items, next }
}
