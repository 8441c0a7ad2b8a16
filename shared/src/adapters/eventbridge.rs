//! EventBridge Scheduler: one schedule per job (two for a cron whose day fields are both
//! restricted), rendered by the shared schedule module, targeting the SQS run queue.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput;
use aws_sdk_scheduler::primitives::DateTime as AwsDateTime;
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, ScheduleState, Target,
};
use chrono::{DateTime, Utc};
use tracing::info;

use crate::domain::{Job, JobId, TeamId, time::from_unix};
use crate::ports::{
    Clock, Repair, SchedulePage, ScheduleReconciler, ScheduleSync, StoreError, StoreResult,
};
use crate::schedule::ScheduleType;

/// Where schedules send their runs, and as whom.
#[derive(Clone, Debug)]
pub struct SchedulerTarget {
    /// The schedule group every job schedule lives in.
    pub group: String,
    /// The run queue's ARN.
    pub queue_arn: String,
    /// The role EventBridge Scheduler assumes to send to the queue.
    pub role_arn: String,
    /// Where EventBridge puts an invocation it could not deliver.
    pub dead_letter_arn: String,
}

/// How long EventBridge keeps retrying to deliver one invocation to the queue.
const MAX_EVENT_AGE_SECS: i32 = 3_600;
const MAX_RETRY_ATTEMPTS: i32 = 185;
const NAME_PREFIX: &str = "job-";

/// Everything we set on one EventBridge schedule. `UpdateSchedule` replaces every field, so
/// create and update both send all of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleDefinition {
    pub name: String,
    pub expression: String,
    pub timezone: String,
    pub enabled: bool,
    /// Set for `rate(...)`: AWS counts the rate from here (on the job's grid, inside its
    /// window); for the others, the job's `starts_at`.
    pub start_date: Option<DateTime<Utc>>,
    /// The job's `ends_at`: the schedule fires nothing from then on.
    pub end_date: Option<DateTime<Utc>>,
    /// The target input: a `tick` message with EventBridge's scheduled-time placeholder.
    pub input: String,
    /// `once` schedules delete themselves after firing.
    pub delete_after_completion: bool,
}

/// The schedule names a job may have: one per expression.
pub fn schedule_names(job: JobId) -> [String; 2] {
    [
        format!("{NAME_PREFIX}{job}"),
        format!("{NAME_PREFIX}{job}-2"),
    ]
}

/// The job a schedule name belongs to.
pub fn job_of_schedule(name: &str) -> Option<JobId> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let id = rest.strip_suffix("-2").unwrap_or(rest);
    id.parse().ok()
}

/// The schedules that fire `job` as it is stored, at `now`. A `once` job that is paused or
/// has fired has none (resuming it creates it again); a paused recurring job keeps its
/// schedules, disabled.
pub fn definitions(job: &Job, now: DateTime<Utc>) -> Vec<ScheduleDefinition> {
    let schedule = &job.spec.schedule;
    if schedule.kind() == ScheduleType::Once && !job.enabled {
        return Vec::new();
    }
    let eb = schedule.eventbridge();
    let start_date = if eb.anchored {
        // On the job's grid, and not in the past (after a late tick, move on whole periods).
        job.next_run_at.map(|next| {
            let period = i64::from(schedule.interval_seconds().unwrap_or(60).max(1));
            let behind = (now - next).num_seconds();
            if behind > 0 {
                next + chrono::Duration::seconds((behind + period - 1) / period * period)
            } else {
                next
            }
        })
    } else {
        schedule.window().starts_at
    };
    let end_date = schedule.window().ends_at;
    let input = serde_json::json!({
        "kind": "tick",
        "team": job.team.as_str(),
        "job_id": job.id.to_string(),
        "scheduled_at": "<aws.scheduler.scheduled-time>",
    })
    .to_string();
    let names = schedule_names(job.id);
    eb.expressions
        .iter()
        .zip(names)
        .map(|(expression, name)| ScheduleDefinition {
            name,
            expression: expression.clone(),
            timezone: eb.timezone.name().to_owned(),
            enabled: job.enabled,
            start_date,
            end_date,
            input: input.clone(),
            delete_after_completion: schedule.kind() == ScheduleType::Once,
        })
        .collect()
}

/// Whether a schedule as it is in AWS does what `want` says. Rate schedules whose start
/// dates differ by whole periods fire on the same grid, and count as equal.
fn same(want: &ScheduleDefinition, have: &ScheduleDefinition, period: Option<u32>) -> bool {
    let starts_agree = match (want.start_date, have.start_date, period) {
        (Some(a), Some(b), Some(p)) => (a - b).num_seconds() % i64::from(p.max(1)) == 0,
        (a, b, _) => a == b,
    };
    starts_agree
        && ScheduleDefinition {
            start_date: None,
            ..want.clone()
        } == ScheduleDefinition {
            start_date: None,
            ..have.clone()
        }
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    e.as_service_error().and_then(|se| se.code())
}

fn backend<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(e)
}

/// Keeps one EventBridge schedule per job expression in step with the stored job.
#[derive(Clone)]
pub struct EventBridgeScheduleSync {
    client: Client,
    target: SchedulerTarget,
    clock: Arc<dyn Clock>,
}

/// Sets every field of a create or update request from a definition (the two request
/// builders have the same setters but no common trait).
macro_rules! with_definition {
    ($request:expr, $d:expr, $target:expr) => {{
        let d: &ScheduleDefinition = $d;
        $request
            .name(&d.name)
            .group_name(&$target.group)
            .schedule_expression(&d.expression)
            .schedule_expression_timezone(&d.timezone)
            .state(if d.enabled {
                ScheduleState::Enabled
            } else {
                ScheduleState::Disabled
            })
            .set_start_date(d.start_date.map(|t| AwsDateTime::from_secs(t.timestamp())))
            .set_end_date(d.end_date.map(|t| AwsDateTime::from_secs(t.timestamp())))
            .flexible_time_window(
                FlexibleTimeWindow::builder()
                    .mode(FlexibleTimeWindowMode::Off)
                    .build()
                    .map_err(StoreError::backend)?,
            )
            .target(
                Target::builder()
                    .arn(&$target.queue_arn)
                    .role_arn(&$target.role_arn)
                    .input(&d.input)
                    .retry_policy(
                        RetryPolicy::builder()
                            .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECS)
                            .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                            .build(),
                    )
                    .dead_letter_config(
                        DeadLetterConfig::builder()
                            .arn(&$target.dead_letter_arn)
                            .build(),
                    )
                    .build()
                    .map_err(StoreError::backend)?,
            )
            .action_after_completion(if d.delete_after_completion {
                ActionAfterCompletion::Delete
            } else {
                ActionAfterCompletion::None
            })
    }};
}

impl EventBridgeScheduleSync {
    pub fn new(client: Client, target: SchedulerTarget, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            target,
            clock,
        }
    }

    pub fn target(&self) -> &SchedulerTarget {
        &self.target
    }

    /// Creates or replaces a schedule.
    async fn put(&self, d: &ScheduleDefinition) -> StoreResult<()> {
        let update = with_definition!(self.client.update_schedule(), d, self.target)
            .send()
            .await;
        match update {
            Ok(_) => return Ok(()),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(backend(e)),
        }
        let create = with_definition!(self.client.create_schedule(), d, self.target)
            .send()
            .await;
        match create {
            Ok(_) => Ok(()),
            // Created meanwhile by another writer: replace it with ours.
            Err(e) if code(&e) == Some("ConflictException") => {
                with_definition!(self.client.update_schedule(), d, self.target)
                    .send()
                    .await
                    .map_err(backend)?;
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, name: &str) -> StoreResult<bool> {
        let result = self
            .client
            .delete_schedule()
            .name(name)
            .group_name(&self.target.group)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// A schedule as it is in AWS, if it exists.
    pub async fn get(&self, name: &str) -> StoreResult<Option<ScheduleDefinition>> {
        let result = self
            .client
            .get_schedule()
            .name(name)
            .group_name(&self.target.group)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(read_definition(name, out))),
            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// The names of every job schedule in the group.
    pub async fn list_names(&self) -> StoreResult<Vec<String>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_schedules()
                .group_name(&self.target.group)
                .name_prefix(NAME_PREFIX)
                .set_next_token(token)
                .send()
                .await
                .map_err(backend)?;
            names.extend(
                out.schedules()
                    .iter()
                    .filter_map(|s| s.name().map(str::to_owned)),
            );
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(names),
            }
        }
    }

    /// Writes `d`: an update when it is known to exist, a create when it is known not to.
    async fn write(&self, d: &ScheduleDefinition, exists: bool) -> StoreResult<()> {
        if exists {
            with_definition!(self.client.update_schedule(), d, self.target)
                .send()
                .await
                .map_err(backend)?;
            return Ok(());
        }
        let create = with_definition!(self.client.create_schedule(), d, self.target)
            .send()
            .await;
        match create {
            Ok(_) => Ok(()),
            // Created meanwhile (the API's own sync): replace it with what the job says now.
            Err(e) if code(&e) == Some("ConflictException") => self.put(d).await,
            Err(e) => Err(backend(e)),
        }
    }

    /// Reads each schedule `job` wants and writes the ones that are missing or differ.
    async fn repair_wanted(&self, job: &Job) -> StoreResult<Repair> {
        let period = job.spec.schedule.interval_seconds();
        let mut r = Repair::default();
        for want in definitions(job, self.clock.now()) {
            let have = self.get(&want.name).await?;
            r.calls += 1;
            if have.as_ref().is_some_and(|h| same(&want, h, period)) {
                continue;
            }
            self.write(&want, have.is_some()).await?;
            r.calls += 1;
            r.changed += 1;
        }
        if r.changed > 0 {
            info!(job_id = %job.id, changed = r.changed, "schedule drift repaired");
        }
        Ok(r)
    }
}

/// Whether two versions of a job want the same schedules: a change that leaves them equal
/// (a run's end, a next run moved on by whole periods, a rename) needs no Scheduler call.
pub fn same_schedules(a: &Job, b: &Job, now: DateTime<Utc>) -> bool {
    let (wa, wb) = (definitions(a, now), definitions(b, now));
    let period = a.spec.schedule.interval_seconds();
    wa.len() == wb.len()
        && wa
            .iter()
            .zip(&wb)
            .all(|(x, y)| x.name == y.name && same(x, y, period))
}

fn read_definition(name: &str, out: GetScheduleOutput) -> ScheduleDefinition {
    ScheduleDefinition {
        name: name.to_owned(),
        expression: out.schedule_expression.unwrap_or_default(),
        timezone: out.schedule_expression_timezone.unwrap_or_default(),
        enabled: out.state != Some(ScheduleState::Disabled),
        start_date: out.start_date.map(|t| from_unix(t.secs())),
        end_date: out.end_date.map(|t| from_unix(t.secs())),
        input: out
            .target
            .as_ref()
            .and_then(|t| t.input.clone())
            .unwrap_or_default(),
        delete_after_completion: out.action_after_completion == Some(ActionAfterCompletion::Delete),
    }
}

#[async_trait]
impl ScheduleSync for EventBridgeScheduleSync {
    async fn job_changed(&self, job: &Job) -> StoreResult<()> {
        let wanted = definitions(job, self.clock.now());
        for d in &wanted {
            self.put(d).await?;
        }
        for name in schedule_names(job.id) {
            if !wanted.iter().any(|d| d.name == name) {
                self.delete(&name).await?;
            }
        }
        Ok(())
    }

    async fn job_deleted(&self, _team: &TeamId, id: JobId) -> StoreResult<()> {
        for name in schedule_names(id) {
            self.delete(&name).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ScheduleReconciler for EventBridgeScheduleSync {
    async fn repair(&self, job: &Job) -> StoreResult<Repair> {
        self.repair_wanted(job).await
    }

    async fn converge(&self, id: JobId, job: Option<&Job>) -> StoreResult<Repair> {
        let mut r = match job {
            Some(job) => self.repair_wanted(job).await?,
            None => Repair::default(),
        };
        let wanted = job.map(|j| self.wanted_names(j)).unwrap_or_default();
        for name in schedule_names(id) {
            if wanted.contains(&name) {
                continue;
            }
            r.calls += 1;
            if self.delete(&name).await? {
                info!(job_id = %id, schedule = %name, "schedule no job wants removed");
                r.changed += 1;
            }
        }
        Ok(r)
    }

    async fn list(&self, token: Option<String>) -> StoreResult<SchedulePage> {
        let out = self
            .client
            .list_schedules()
            .group_name(&self.target.group)
            .name_prefix(NAME_PREFIX)
            .set_next_token(token)
            .send()
            .await
            .map_err(backend)?;
        Ok(SchedulePage {
            names: out
                .schedules()
                .iter()
                .filter_map(|s| s.name().map(str::to_owned))
                .collect(),
            next: out.next_token.filter(|t| !t.is_empty()),
        })
    }

    fn job_of(&self, name: &str) -> Option<JobId> {
        job_of_schedule(name)
    }

    fn wanted_names(&self, job: &Job) -> Vec<String> {
        definitions(job, self.clock.now())
            .into_iter()
            .map(|d| d.name)
            .collect()
    }

    async fn owner(&self, name: &str) -> StoreResult<Option<TeamId>> {
        let Some(d) = self.get(name).await? else {
            return Ok(None);
        };
        let input: serde_json::Value = serde_json::from_str(&d.input).unwrap_or_default();
        Ok(input["team"].as_str().and_then(|t| TeamId::parse(t).ok()))
    }

    async fn remove(&self, name: &str) -> StoreResult<bool> {
        let removed = self.delete(name).await?;
        if removed {
            info!(schedule = %name, "schedule of a deleted job removed");
        }
        Ok(removed)
    }
}
