//! The durable run queue of the embedded backend, in the same file as the jobs: the
//! scheduler's "advance the job and enqueue its run" is one transaction, so a crash can
//! neither lose a run nor make it twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};
use tokio::sync::Notify;
use tracing::{error, info};

use super::executions::interrupt_in_flight;
use super::jobs::{JOB_COLUMNS, job_from_row};
use super::{SqliteDb, corrupt};
use crate::domain::{CatchUp, Job, RunMessage, TeamId, Trigger, time::from_unix};
use crate::ports::{RunQueue, StoreResult};

/// What one claim step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimed {
    /// The runs enqueued.
    pub runs: Vec<RunMessage>,
    /// How many jobs were due (fired, skipped as missed, or set aside as unreadable).
    pub due: usize,
}

/// A message taken from the queue, to be acknowledged or released.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub seq: i64,
    pub message: RunMessage,
}

/// What start-up recovery found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub leases_released: usize,
    pub attempts_interrupted: usize,
    pub missed_runs_skipped: usize,
}

#[derive(Clone)]
pub struct SqliteRunQueue {
    db: SqliteDb,
    deliveries: Arc<Notify>,
}

impl SqliteRunQueue {
    pub fn new(db: SqliteDb) -> Self {
        Self {
            db,
            deliveries: Arc::new(Notify::new()),
        }
    }

    /// Notified whenever a message is enqueued.
    pub fn deliveries(&self) -> Arc<Notify> {
        self.deliveries.clone()
    }

    /// Takes up to `limit` messages due at `now`, leasing them for `lease`.
    pub async fn dequeue(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        let now_ms = now.timestamp_millis();
        let lease_until = now_ms + lease.as_millis() as i64;
        self.db
            .write(move |tx| {
                let mut select = tx.prepare_cached(&DEQUEUE)?;
                let mut rows = select.query(params![now_ms, limit as i64])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(delivery_from_row(r)?);
                }
                let mut lease_stmt =
                    tx.prepare_cached("UPDATE run_queue SET lease_until_ms = ?2 WHERE seq = ?1")?;
                for d in &out {
                    lease_stmt.execute(params![d.seq, lease_until])?;
                }
                Ok(out)
            })
            .await
    }

    /// Deletes handled messages.
    pub async fn ack(&self, seqs: &[i64]) -> StoreResult<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        let seqs = seqs.to_vec();
        self.db
            .write(move |tx| {
                let mut delete = tx.prepare_cached("DELETE FROM run_queue WHERE seq = ?1")?;
                for s in &seqs {
                    delete.execute([s])?;
                }
                Ok(())
            })
            .await
    }

    /// Makes a leased message deliverable again at `at`.
    pub async fn release(&self, seq: i64, at: DateTime<Utc>) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE run_queue SET lease_until_ms = NULL, deliver_at_ms = ?2 WHERE seq = ?1",
                )?
                .execute(params![seq, at.timestamp_millis()])?;
                Ok(())
            })
            .await?;
        self.deliveries.notify_one();
        Ok(())
    }

    /// When the next message becomes deliverable (a leased one: when its lease ends).
    pub async fn next_delivery_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.db
            .read(|c| {
                let ms: Option<i64> = c
                    .prepare_cached(
                        "SELECT MIN(MAX(deliver_at_ms, COALESCE(lease_until_ms, 0))) FROM run_queue",
                    )?
                    .query_row([], |r| r.get(0))?;
                Ok(ms.and_then(DateTime::from_timestamp_millis))
            })
            .await
    }

    /// Messages waiting, leased or not.
    pub async fn len(&self) -> StoreResult<u64> {
        self.db
            .read(|c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM run_queue")?
                    .query_row([], |r| r.get(0))?;
                Ok(n as u64)
            })
            .await
    }

    /// The scheduler's step, one transaction: every job due at `now` (up to `limit`) is
    /// fired by the firing rule (`Job::fire`): its next fire time written, its run enqueued
    /// unless it is later than `catch_up` allows.
    pub async fn claim_due_jobs(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        catch_up: CatchUp,
    ) -> StoreResult<Claimed> {
        self.claim_jobs_due_by(now, now, limit, catch_up).await
    }

    /// [`claim_due_jobs`](Self::claim_due_jobs) ahead of time: jobs due by `horizon` are
    /// claimed at `now`, and each run is enqueued to be delivered at its scheduled time, not
    /// before. A burst is then already queued when its second comes.
    pub async fn claim_jobs_due_by(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: usize,
        catch_up: CatchUp,
    ) -> StoreResult<Claimed> {
        let horizon_secs = horizon.max(now).timestamp();
        let now_ms = now.timestamp_millis();
        let claimed = self
            .db
            .write(move |tx| {
                let due = due_jobs(tx, horizon_secs, limit)?;
                let due_count = due.readable.len() + due.unreadable;
                let fired = fire_jobs(tx, due.readable, now, catch_up)?;
                insert_messages(
                    tx,
                    fired
                        .iter()
                        .map(|f| (&f.run, f.fires_at.timestamp_millis().max(now_ms))),
                )?;
                Ok(Claimed {
                    runs: fired.into_iter().map(|f| f.run).collect(),
                    due: due_count,
                })
            })
            .await?;
        if !claimed.runs.is_empty() {
            self.deliveries.notify_one();
        }
        Ok(claimed)
    }

    /// The queue's and the jobs' state, for the metrics: runs due and waiting, attempts in
    /// flight, retries pending, jobs enabled and paused.
    pub async fn depths(&self, now: DateTime<Utc>) -> StoreResult<crate::metrics::Depths> {
        let now_ms = now.timestamp_millis();
        self.db
            .read(move |c| {
                let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<u64> {
                    let n: i64 = c.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
                    Ok(n.max(0) as u64)
                };
                Ok(crate::metrics::Depths {
                    queue_due: count(
                        "SELECT COUNT(*) FROM run_queue WHERE deliver_at_ms <= ?1 \
                         AND lease_until_ms IS NULL",
                        &[&now_ms],
                    )?,
                    in_flight: count("SELECT COUNT(*) FROM executions WHERE status IS NULL", &[])?,
                    retries_pending: count(
                        "SELECT COUNT(*) FROM run_queue WHERE attempt > 1",
                        &[],
                    )?,
                    jobs_enabled: count("SELECT COUNT(*) FROM jobs WHERE enabled = 1", &[])?,
                    jobs_paused: count("SELECT COUNT(*) FROM jobs WHERE enabled = 0", &[])?,
                })
            })
            .await
    }

    /// The earliest `next_run_at` of any job.
    pub async fn next_job_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.db
            .read(|c| {
                let t: Option<i64> = c
                    .prepare_cached(
                        "SELECT MIN(next_run_at) FROM jobs WHERE next_run_at IS NOT NULL",
                    )?
                    .query_row([], |r| r.get(0))?;
                Ok(t.map(from_unix))
            })
            .await
    }

    /// At start-up, before any worker runs: no lease and no attempt of the previous process
    /// can still be live. Leases are released and in-flight attempts recorded as interrupted,
    /// so their messages are redelivered and settled without sending the attempt twice.
    /// Scheduled runs that were due more than `misfire_grace` ago and never started were missed
    /// while the service was down: like runs the scheduler finds late, they are skipped, not
    /// replayed. Retries of started runs and manual triggers are still delivered.
    pub async fn recover(
        &self,
        now: DateTime<Utc>,
        misfire_grace: Duration,
    ) -> StoreResult<Recovery> {
        let now_ms = now.timestamp_millis();
        let grace_s = misfire_grace.as_secs() as i64;
        self.db
            .write(move |tx| {
                let leases_released = tx.execute(
                    "UPDATE run_queue SET lease_until_ms = NULL WHERE lease_until_ms IS NOT NULL",
                    [],
                )?;
                let attempts_interrupted = interrupt_in_flight(tx, now)?;
                // A job's own catch-up window, when it has one, instead of the grace.
                let missed_runs_skipped = tx.execute(
                    "DELETE FROM run_queue WHERE trigger = 'schedule' AND attempt = 1 \
                     AND deliver_at_ms < ?1 - 1000 * COALESCE((SELECT j.catchup_window_s \
                        FROM jobs j WHERE j.id = run_queue.job_id), ?2) \
                     AND NOT EXISTS (SELECT 1 FROM executions e \
                        WHERE e.run_id = run_queue.run_id AND e.attempt = 1)",
                    params![now_ms, grace_s],
                )?;
                Ok(Recovery {
                    leases_released,
                    attempts_interrupted,
                    missed_runs_skipped,
                })
            })
            .await
    }
}

#[async_trait]
impl RunQueue for SqliteRunQueue {
    async fn enqueue(&self, runs: &[(RunMessage, DateTime<Utc>)]) -> StoreResult<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let runs = runs.to_vec();
        self.db
            .write(move |tx| {
                insert_messages(tx, runs.iter().map(|(m, at)| (m, at.timestamp_millis())))
            })
            .await?;
        self.deliveries.notify_one();
        Ok(())
    }
}

/// The jobs due by `horizon`, earliest first. One row that cannot be read (say, written
/// under rules an upgrade tightened) must not stop every other job: it stops firing,
/// loudly, until it is repaired or deleted.
struct DueJobs {
    readable: Vec<Job>,
    unreadable: usize,
}

fn due_jobs(
    tx: &rusqlite::Transaction<'_>,
    horizon_secs: i64,
    limit: usize,
) -> StoreResult<DueJobs> {
    let mut select = tx.prepare_cached(&format!(
        "SELECT {} FROM jobs WHERE next_run_at IS NOT NULL \
         AND next_run_at <= ?1 ORDER BY next_run_at LIMIT ?2",
        *JOB_COLUMNS
    ))?;
    let mut rows = select.query(params![horizon_secs, limit as i64])?;
    let mut readable = Vec::new();
    let mut unreadable = Vec::new();
    while let Some(r) = rows.next()? {
        match job_from_row(r) {
            Ok(job) => readable.push(job),
            Err(e) => unreadable.push((r.get::<_, String>("id")?, e)),
        }
    }
    drop(rows);
    let mut quarantine = tx.prepare_cached("UPDATE jobs SET next_run_at = NULL WHERE id = ?1")?;
    for (id, e) in &unreadable {
        error!(job_id = %id, error = %e,
            "a stored job could not be read: it will not fire until it is repaired or deleted");
        quarantine.execute([id])?;
    }
    Ok(DueJobs {
        readable,
        unreadable: unreadable.len(),
    })
}

/// A run made by firing a job, and when it fires (its time plus the job's jitter).
struct Fired {
    run: RunMessage,
    fires_at: DateTime<Utc>,
}

/// Applies the firing rule to each due job and writes what it changed; returns the runs.
fn fire_jobs(
    tx: &rusqlite::Transaction<'_>,
    due: Vec<Job>,
    now: DateTime<Utc>,
    catch_up: CatchUp,
) -> StoreResult<Vec<Fired>> {
    let mut advance = tx.prepare_cached(
        "UPDATE jobs SET next_run_at = ?2, version = ?3, enabled = ?4, updated_at = ?5 \
         WHERE id = ?1",
    )?;
    let mut runs = Vec::new();
    for job in due {
        let Some(at) = job.next_run_at else { continue };
        let id = job.id;
        let firing = job.fire(at, now, catch_up);
        let fired = &firing.job;
        advance.execute(params![
            id.to_string(),
            fired.next_run_at.map(|t| t.timestamp()),
            fired.version as i64,
            fired.enabled,
            fired.updated_at.timestamp(),
        ])?;
        if firing.skipped > 0 {
            info!(job_id = %id, skipped = firing.skipped,
                "older missed runs skipped (the most recent one is the one that may start)");
        }
        match firing.run {
            Some(run) => runs.push(Fired {
                fires_at: fired.fires_at(run.scheduled_at),
                run,
            }),
            None => info!(job_id = %id, scheduled_at = %at,
                late_secs = (now - at).num_seconds(),
                "missed run skipped (the service was not running at its time)"),
        }
    }
    Ok(runs)
}

fn insert_messages<'a>(
    tx: &rusqlite::Transaction<'_>,
    messages: impl Iterator<Item = (&'a RunMessage, i64)>,
) -> StoreResult<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO run_queue (deliver_at_ms, team, job_id, run_id, trigger, scheduled_at, \
         attempt, generation) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (m, at_ms) in messages {
        insert.execute(params![
            at_ms,
            m.team.as_str(),
            m.job_id.to_string(),
            m.run_id.to_string(),
            m.trigger.as_str(),
            m.scheduled_at.timestamp(),
            m.attempt,
            m.generation as i64,
        ])?;
    }
    Ok(())
}

/// The columns a dequeue selects, in order.
const QUEUE_COLUMNS: [&str; 8] = [
    "seq",
    "team",
    "job_id",
    "run_id",
    "trigger",
    "scheduled_at",
    "attempt",
    "generation",
];

static DEQUEUE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {} FROM run_queue WHERE deliver_at_ms <= ?1 \
         AND (lease_until_ms IS NULL OR lease_until_ms <= ?1) \
         ORDER BY deliver_at_ms, seq LIMIT ?2",
        QUEUE_COLUMNS.join(", ")
    )
});

/// `position(&QUEUE_COLUMNS, name)`, evaluated when compiling.
macro_rules! col {
    ($name:literal) => {
        const { super::position(&QUEUE_COLUMNS, $name) }
    };
}

fn delivery_from_row(r: &Row<'_>) -> StoreResult<Delivery> {
    let seq: i64 = r.get(col!("seq"))?;
    let bad =
        |field: &str, e: &dyn std::fmt::Display| corrupt(&format!("queued run {seq} {field}"), e);
    let text = |column: usize| r.get::<_, String>(column);
    let trigger = text(col!("trigger"))?;
    Ok(Delivery {
        seq,
        message: RunMessage {
            team: TeamId::parse(&text(col!("team"))?).map_err(|e| bad("team", &e))?,
            job_id: text(col!("job_id"))?
                .parse()
                .map_err(|e| bad("job_id", &e))?,
            run_id: text(col!("run_id"))?
                .parse()
                .map_err(|e| bad("run_id", &e))?,
            trigger: Trigger::parse(&trigger).ok_or_else(|| bad("trigger", &trigger))?,
            scheduled_at: from_unix(r.get(col!("scheduled_at"))?),
            attempt: r.get::<_, i64>(col!("attempt"))? as u32,
            generation: r.get::<_, i64>(col!("generation"))? as u64,
        },
    })
}
