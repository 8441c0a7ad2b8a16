//! The application layer: what each API operation does, for any backend. The HTTP layer
//! (`api`) only translates between HTTP and these calls.

pub mod contention;
pub mod migration;
pub mod teams;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use tracing::{info, warn};

use crate::domain::{
    BackfillRange, Execution, ExecutionFilter, ExecutionId, GivenUrl, GivenUrls, InputError, Job,
    JobDraft, JobFilter, JobId, PauseReason, RunId, RunMessage, TeamId, UpcomingRun,
    time::whole_seconds,
};
use crate::ports::{
    Clock, ExecutionStore, InsertOutcome, JobStore, Page, PageRequest, RunQueue, ScheduleSync,
    StoreError, UpdateOutcome,
};
use crate::targets::TargetGuard;
use contention::{Attempt, until_done};
pub use teams::{EnsuredTeam, create_key, ensure_team, rotate_signing_secret};

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

/// How many of a job's newest finished attempts are read for its `last_run_at` (past the
/// skipped runs of an overlap policy among them).
const NEWEST_ATTEMPTS: u32 = 5;

impl JobService {
    /// Creates a job, within the team's quota (exactly, under any concurrency: the store
    /// counts and inserts in one conditional write).
    pub async fn create(&self, team: &TeamId, draft: &JobDraft) -> ServiceResult<Job> {
        let now = whole_seconds(self.clock.now());
        let urls = self.vetted_urls(draft).await;
        let patch = draft.check_new(urls, now)?;
        let job = Job::new(team.clone(), patch.spec, patch.enabled.unwrap_or(true), now);
        match self.jobs.insert(&job, self.max_jobs_per_team).await? {
            InsertOutcome::Inserted => {}
            InsertOutcome::QuotaExceeded => {
                return Err(ServiceError::QuotaExceeded(self.max_jobs_per_team));
            }
        }
        info!(job_id = %job.id, team = %team, "job created");
        self.sync(&job).await;
        Ok(job)
    }

    pub async fn get(&self, team: &TeamId, id: JobId) -> ServiceResult<Job> {
        let job = self.stored(team, id).await?;
        self.shown(job).await
    }

    async fn stored(&self, team: &TeamId, id: JobId) -> ServiceResult<Job> {
        self.jobs.get(team, id).await?.ok_or(ServiceError::NotFound)
    }

    pub async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<JobId>,
        filter: &JobFilter,
    ) -> ServiceResult<Page<Job, JobId>> {
        let page = self.jobs.list(team, page, filter).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for chunk in page.items.chunks(16) {
            let shown = join_all(chunk.iter().map(|j| self.shown(j.clone()))).await;
            for job in shown {
                items.push(job?);
            }
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// A job as it is now: its next run (`Job::as_of`) and its last (`Job::ran`, from its
    /// newest executions: a run's end at steady state is written only there).
    async fn shown(&self, job: Job) -> ServiceResult<Job> {
        let newest = self
            .executions
            .list(
                &job.team,
                job.id,
                PageRequest::first(NEWEST_ATTEMPTS),
                &ExecutionFilter::default(),
            )
            .await?;
        Ok(job.as_of(self.clock.now()).ran(&newest.items))
    }

    /// PATCH: merges the draft over the stored job; `enabled` pauses or resumes. The
    /// next run is recomputed only when the schedule really changed.
    pub async fn update(&self, team: &TeamId, id: JobId, draft: &JobDraft) -> ServiceResult<Job> {
        let urls = self.vetted_urls(draft).await;
        self.modify(team, id, |job, now| {
            let patch = draft.check_patch(&job.spec, urls.clone(), now)?;
            let schedule_changed = patch.spec.schedule != job.spec.schedule;
            job.spec = patch.spec;
            match patch.enabled {
                Some(false) if job.enabled => pause(job),
                Some(true) if !job.enabled => resume(job, now)?,
                _ if schedule_changed && job.enabled => {
                    job.next_run_at = job.spec.schedule.first_run(now);
                }
                _ => {}
            }
            Ok(())
        })
        .await
    }

    /// Idempotent. A reason, when given, is shown on the job until it is resumed (pausing a
    /// paused job with a new reason replaces it).
    pub async fn pause(
        &self,
        team: &TeamId,
        id: JobId,
        reason: Option<PauseReason>,
    ) -> ServiceResult<Job> {
        self.modify(team, id, |job, _| {
            if job.enabled {
                job.pause(reason.clone());
            } else if reason.is_some() {
                job.paused_reason = reason.clone();
            }
            Ok(())
        })
        .await
    }

    /// Idempotent. Intervals count again from the resume time.
    pub async fn resume(&self, team: &TeamId, id: JobId) -> ServiceResult<Job> {
        self.modify(team, id, |job, now| {
            if !job.enabled {
                resume(job, now)?;
            }
            Ok(())
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
        let job = self.stored(team, id).await?;
        if !job.enabled {
            return Err(ServiceError::JobPaused);
        }
        let now = whole_seconds(self.clock.now());
        let message = RunMessage::manual(&job, now);
        self.queue.enqueue(&[(message.clone(), now)]).await?;
        info!(job_id = %id, run_id = %message.run_id, "manual run enqueued");
        Ok(message.run_id)
    }

    /// Runs the job's scheduled times in a past range, each as the run it would have been:
    /// a time that already ran is recorded already and is not sent again.
    pub async fn backfill(
        &self,
        team: &TeamId,
        id: JobId,
        range: BackfillRange,
    ) -> ServiceResult<Vec<RunMessage>> {
        let job = self.stored(team, id).await?;
        if !job.enabled {
            return Err(ServiceError::JobPaused);
        }
        let now = whole_seconds(self.clock.now());
        if range.until > now {
            return Err(invalid("until", "must not be in the future"));
        }
        let runs = job.backfill(range).map_err(|m| invalid("from", m))?;
        let queued: Vec<_> = runs.iter().map(|m| (m.clone(), now)).collect();
        self.queue.enqueue(&queued).await?;
        info!(job_id = %id, runs = runs.len(), "backfill enqueued");
        Ok(runs)
    }

    /// The next `count` runs the job will fire (none while it is paused).
    pub async fn upcoming(
        &self,
        team: &TeamId,
        id: JobId,
        count: usize,
    ) -> ServiceResult<Vec<UpcomingRun>> {
        let job = self.stored(team, id).await?.as_of(self.clock.now());
        Ok(job.upcoming(count))
    }

    /// The first `count` runs of a schedule not yet saved, from now: the same rules and
    /// messages as a create, the same engine as `next_run_at`.
    pub fn preview(&self, draft: &JobDraft, count: usize) -> ServiceResult<Vec<UpcomingRun>> {
        let now = whole_seconds(self.clock.now());
        let preview = draft.check_preview(now)?;
        Ok(preview
            .schedule
            .upcoming(now, count)
            .into_iter()
            .map(|t| UpcomingRun::previewed(t, preview.jitter))
            .collect())
    }

    pub async fn executions(
        &self,
        team: &TeamId,
        job: JobId,
        page: PageRequest<ExecutionId>,
        filter: &ExecutionFilter,
    ) -> ServiceResult<Page<Execution, ExecutionId>> {
        self.stored(team, job).await?;
        Ok(self.executions.list(team, job, page, filter).await?)
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

    /// Read, change, write back if nobody changed it meanwhile (see [`modify_job`]).
    async fn modify(
        &self,
        team: &TeamId,
        id: JobId,
        change: impl Fn(&mut Job, DateTime<Utc>) -> ServiceResult<()> + Sync,
    ) -> ServiceResult<Job> {
        let ports = JobPorts {
            jobs: self.jobs.as_ref(),
            schedules: self.schedules.as_ref(),
            clock: self.clock.as_ref(),
        };
        let job = modify_job(ports, team, id, change).await?;
        self.shown(job).await
    }

    /// The draft's URLs (target and notice URL), parsed, then put through the save-time
    /// target check (which may resolve the host name): an error is the URL's, reported with
    /// the other fields'.
    async fn vetted_urls(&self, draft: &JobDraft) -> GivenUrls {
        let urls = draft.parse_urls();
        GivenUrls {
            url: self.vet(urls.url).await,
            notify_url: match urls.notify_url {
                Some(given) => Some(self.vet(given).await),
                None => None,
            },
        }
    }

    async fn vet(&self, url: GivenUrl) -> GivenUrl {
        Some(match url? {
            Ok(url) => self.targets.vet(&url).await.map(|()| url),
            Err(message) => Err(message),
        })
    }

    async fn sync(&self, job: &Job) {
        if let Err(e) = self.schedules.job_changed(job).await {
            warn!(job_id = %job.id, error = %e, "schedule sync failed; reconciliation will retry");
        }
    }
}

fn invalid(field: &str, message: &str) -> ServiceError {
    ServiceError::Input(InputError::Invalid(crate::domain::FieldErrors::single(
        field, message,
    )))
}

fn pause(job: &mut Job) {
    job.pause(None);
}

fn resume(job: &mut Job, now: DateTime<Utc>) -> ServiceResult<()> {
    job.resume(now).ok_or(ServiceError::NoFutureRun)
}

/// What changing a job needs: its store, the schedule to sync, the time.
#[derive(Clone, Copy)]
pub struct JobPorts<'a> {
    pub jobs: &'a dyn JobStore,
    pub schedules: &'a dyn ScheduleSync,
    pub clock: &'a dyn Clock,
}

/// Read, change, write back if nobody changed it meanwhile; retried on contention. A
/// change that changes nothing writes nothing: the job keeps its version and `updated_at`,
/// and its schedule is not synced again. The one way a job is changed: the API's
/// operations and the executor's auto-disable.
pub async fn modify_job(
    ports: JobPorts<'_>,
    team: &TeamId,
    id: JobId,
    change: impl Fn(&mut Job, DateTime<Utc>) -> ServiceResult<()> + Sync,
) -> ServiceResult<Job> {
    let change = &change;
    let written = until_done(|| async move {
        let stored = ports.jobs.get(team, id).await?.ok_or(ServiceError::NotFound)?;
        let now = whole_seconds(ports.clock.now());
        let mut job = stored.clone();
        change(&mut job, now)?;
        if job == stored {
            return Ok(Attempt::Done(stored));
        }
        job.version += 1;
        job.updated_at = now;
        match ports.jobs.update(&job, stored.version).await? {
            UpdateOutcome::Updated => {
                info!(job_id = %id, enabled = job.enabled, "job updated");
                if let Err(e) = ports.schedules.job_changed(&job).await {
                    warn!(job_id = %id, error = %e, "schedule sync failed; reconciliation will retry");
                }
                Ok(Attempt::Done(job))
            }
            UpdateOutcome::NotFound => Err(ServiceError::NotFound),
            UpdateOutcome::Conflict => Ok(Attempt::Conflict),
        }
    })
    .await?;
    written.ok_or(ServiceError::Contention)
}
