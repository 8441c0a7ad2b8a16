//! The application layer: what each API operation does, for any backend. The HTTP layer
//! (`api`) only translates between HTTP and these calls.

use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::domain::{
    Execution, ExecutionId, FieldErrors, InputError, Job, JobId, RunId, RunMessage, TargetUrl,
    TeamId, TeamSecrets, Trigger, parse_job_patch, parse_new_job, time::whole_seconds,
};
use crate::ports::{
    Clock, ExecutionStore, JobStore, Page, PageRequest, RunQueue, ScheduleSync, StoreError,
    UpdateOutcome,
};
use crate::targets::TargetGuard;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not found")]
    NotFound,
    #[error("the job is paused")]
    JobPaused,
    #[error("the job's schedule has no future run")]
    NoFutureRun,
    #[error("the job's team has reached its quota of {0} jobs")]
    QuotaExceeded(u64),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the job kept changing while it was being updated")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Everything the operations need, built once at start-up.
#[derive(Clone)]
pub struct JobService {
    pub jobs: Arc<dyn JobStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub queue: Arc<dyn RunQueue>,
    pub schedules: Arc<dyn ScheduleSync>,
    pub clock: Arc<dyn Clock>,
    /// Most jobs one team may have.
    pub max_jobs_per_team: u64,
    /// Which webhook targets a job may have.
    pub targets: TargetGuard,
}

/// Read-modify-write attempts before giving up; between them a short random pause, so
/// that many concurrent changes to one job serialise instead of colliding again.
const UPDATE_ATTEMPTS: u32 = 64;

impl JobService {
    pub async fn create(&self, team: &TeamId, body: &Map<String, Value>) -> ServiceResult<Job> {
        let now = whole_seconds(self.clock.now());
        let refused = self.refused_target(body).await;
        let (spec, enabled) = with_target_error(parse_new_job(body, now), refused)?;
        if self.jobs.count(team).await? >= self.max_jobs_per_team {
            return Err(ServiceError::QuotaExceeded(self.max_jobs_per_team));
        }
        let job = Job::new(team.clone(), spec, enabled, now);
        self.jobs.insert(&job).await?;
        info!(job_id = %job.id, team = %team, "job created");
        self.sync(&job).await;
        Ok(job)
    }

    pub async fn get(&self, team: &TeamId, id: JobId) -> ServiceResult<Job> {
        self.jobs.get(team, id).await?.ok_or(ServiceError::NotFound)
    }

    pub async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<JobId>,
    ) -> ServiceResult<Page<Job, JobId>> {
        Ok(self.jobs.list(team, page).await?)
    }

    /// PATCH: merges the body over the stored job; `enabled` pauses or resumes.
    pub async fn update(
        &self,
        team: &TeamId,
        id: JobId,
        body: &Map<String, Value>,
    ) -> ServiceResult<Job> {
        let refused = self.refused_target(body).await;
        self.modify(team, id, |job, now| {
            let patch = with_target_error(parse_job_patch(body, &job.spec, now), refused)?;
            let was_enabled = job.enabled;
            job.spec = patch.spec;
            match patch.enabled {
                Some(false) if was_enabled => pause(job),
                Some(true) if !was_enabled => resume(job, now)?,
                _ if patch.schedule_changed && job.enabled => {
                    job.next_run_at = job.spec.schedule.first_run(now);
                }
                _ => {}
            }
            Ok(true)
        })
        .await
    }

    /// Idempotent.
    pub async fn pause(&self, team: &TeamId, id: JobId) -> ServiceResult<Job> {
        self.modify(team, id, |job, _| {
            if !job.enabled {
                return Ok(false);
            }
            pause(job);
            Ok(true)
        })
        .await
    }

    /// Idempotent. Intervals count again from the resume time.
    pub async fn resume(&self, team: &TeamId, id: JobId) -> ServiceResult<Job> {
        self.modify(team, id, |job, now| {
            if job.enabled {
                return Ok(false);
            }
            resume(job, now)?;
            Ok(true)
        })
        .await
    }

    pub async fn delete(&self, team: &TeamId, id: JobId) -> ServiceResult<()> {
        if !self.jobs.delete(team, id).await? {
            return Err(ServiceError::NotFound);
        }
        info!(job_id = %id, team = %team, "job deleted");
        if let Err(e) = self.schedules.job_deleted(team, id).await {
            warn!(job_id = %id, error = %e, "schedule removal failed; reconciliation will retry");
        }
        if let Err(e) = self.executions.delete_for_job(team, id).await {
            warn!(job_id = %id, error = %e, "could not delete the executions of a deleted job");
        }
        Ok(())
    }

    /// Enqueues a manual run that starts at once.
    pub async fn trigger(&self, team: &TeamId, id: JobId) -> ServiceResult<RunId> {
        let job = self.get(team, id).await?;
        if !job.enabled {
            return Err(ServiceError::JobPaused);
        }
        let now = whole_seconds(self.clock.now());
        let message = RunMessage {
            team: team.clone(),
            job_id: id,
            run_id: RunId::new(),
            trigger: Trigger::Manual,
            scheduled_at: now,
            attempt: 1,
            generation: job.generation,
        };
        self.queue.enqueue(&[(message.clone(), now)]).await?;
        info!(job_id = %id, run_id = %message.run_id, "manual run enqueued");
        Ok(message.run_id)
    }

    pub async fn executions(
        &self,
        team: &TeamId,
        job: JobId,
        page: PageRequest<ExecutionId>,
    ) -> ServiceResult<Page<Execution, ExecutionId>> {
        self.get(team, job).await?;
        Ok(self.executions.list(team, job, page).await?)
    }

    pub async fn execution(
        &self,
        team: &TeamId,
        job: JobId,
        id: ExecutionId,
    ) -> ServiceResult<Execution> {
        self.executions
            .get(team, job, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Read, change, write back if nobody changed it meanwhile; retried on contention.
    /// `change` returns false when there is nothing to write.
    async fn modify(
        &self,
        team: &TeamId,
        id: JobId,
        change: impl Fn(&mut Job, chrono::DateTime<chrono::Utc>) -> ServiceResult<bool>,
    ) -> ServiceResult<Job> {
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(contention_pause(attempt)).await;
            }
            let mut job = self.get(team, id).await?;
            let now = whole_seconds(self.clock.now());
            if !change(&mut job, now)? {
                return Ok(job);
            }
            let expected = job.version;
            job.version += 1;
            job.updated_at = now;
            match self.jobs.update(&job, expected).await? {
                UpdateOutcome::Updated => {
                    info!(job_id = %id, enabled = job.enabled, "job updated");
                    self.sync(&job).await;
                    return Ok(job);
                }
                UpdateOutcome::NotFound => return Err(ServiceError::NotFound),
                UpdateOutcome::Conflict => continue,
            }
        }
        Err(ServiceError::Contention)
    }

    /// The save-time target check of a body's `url` (when it is a valid URL), run before
    /// parsing so that its error joins the other fields' errors.
    async fn refused_target(&self, body: &Map<String, Value>) -> Option<&'static str> {
        let url = TargetUrl::parse(body.get("url")?.as_str()?).ok()?;
        self.targets.vet(&url).await.err()
    }

    async fn sync(&self, job: &Job) {
        if let Err(e) = self.schedules.job_changed(job).await {
            warn!(job_id = %job.id, error = %e, "schedule sync failed; reconciliation will retry");
        }
    }
}

/// Up to 1, 2, 4, ... 32 ms, at random.
fn contention_pause(attempt: u32) -> std::time::Duration {
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let ceiling_us = 1_000u64 << attempt.min(5);
    std::time::Duration::from_micros(u64::from(u16::from_le_bytes(byte)) % ceiling_us)
}

fn with_target_error<T>(
    parsed: Result<T, InputError>,
    refused: Option<&'static str>,
) -> Result<T, InputError> {
    let Some(message) = refused else {
        return parsed;
    };
    match parsed {
        Ok(_) => Err(InputError::Invalid(FieldErrors::single("url", message))),
        Err(InputError::Invalid(mut errors)) => {
            errors.add("url", message);
            Err(InputError::Invalid(errors))
        }
        Err(other) => Err(other),
    }
}

/// Stops every scheduled run after now, including queued runs and pending retries.
fn pause(job: &mut Job) {
    job.enabled = false;
    job.generation += 1;
    job.next_run_at = None;
}

fn resume(job: &mut Job, now: chrono::DateTime<chrono::Utc>) -> ServiceResult<()> {
    let next = job
        .spec
        .schedule
        .first_run(now)
        .ok_or(ServiceError::NoFutureRun)?;
    job.enabled = true;
    job.next_run_at = Some(next);
    Ok(())
}

/// Creates a key and stores its hash. The plain key is returned once, never stored.
pub async fn create_key(
    keys: &dyn crate::ports::KeyStore,
    team: TeamId,
    scopes: crate::domain::Scopes,
    expires_in: Option<chrono::Duration>,
) -> Result<(crate::domain::PlainKey, crate::domain::ApiKey), StoreError> {
    let plain = crate::domain::PlainKey::generate();
    let now = crate::domain::time::whole_seconds(chrono::Utc::now());
    let key = crate::domain::ApiKey {
        prefix: plain.prefix(),
        hash: plain.hash(),
        team,
        scopes,
        created_at: now,
        expires_at: expires_in.map(|d| now + d),
        revoked_at: None,
        last_used_at: None,
    };
    keys.insert(&key).await?;
    Ok((plain, key))
}

/// The team's signing secrets, created if the team has none yet. Returns whether they were
/// created now.
pub async fn ensure_team(
    teams: &dyn crate::ports::TeamStore,
    team: &TeamId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(TeamSecrets, bool), StoreError> {
    if let Some(existing) = teams.get(team).await? {
        return Ok((existing, false));
    }
    let fresh = TeamSecrets::new(team.clone(), whole_seconds(now));
    if teams.insert(&fresh).await? {
        return Ok((fresh, true));
    }
    // Created concurrently: use the winner's.
    let existing = teams
        .get(team)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("team {team} was created and is gone again")))?;
    Ok((existing, false))
}

/// A new signing secret for the team; the previous one keeps signing for 24 hours
/// (`ROTATION_GRACE`). Creates the team if it has no secret yet.
pub async fn rotate_signing_secret(
    teams: &dyn crate::ports::TeamStore,
    team: &TeamId,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TeamSecrets, StoreError> {
    let now = whole_seconds(now);
    for _ in 0..UPDATE_ATTEMPTS {
        let (current, created) = ensure_team(teams, team, now).await?;
        if created {
            return Ok(current);
        }
        let rotated = current.rotated(now);
        if teams.replace(&rotated, &current.current).await? {
            return Ok(rotated);
        }
    }
    Err(StoreError::Corrupt(format!(
        "team {team}'s secret kept changing during rotation"
    )))
}
