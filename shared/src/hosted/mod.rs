//! The hosted backend's wiring: the AWS adapters assembled into the API, the executor's
//! queue handler and the reconcile pass, from configuration read from the environment.
//! The functions in `functions/` only build the AWS clients, call this and run.

mod runs;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

pub use runs::{Delivery, RunHandler};

use crate::adapters::dns::SystemResolver;
use crate::adapters::dynamodb::{DynamoRateLimiter, DynamoStores, Tables};
use crate::adapters::eventbridge::{EventBridgeScheduleSync, SchedulerTarget};
use crate::adapters::memory::{CachedKeyStore, CachedTeamStore};
use crate::adapters::sqs::SqsRunQueue;
use crate::api::{ApiState, router};
use crate::executor::{
    Executor, LogNotifier, NoticeDelivery, ReqwestWebhookClient, RetryPolicy, SIGNING_SECRET_CACHE,
    WebhookClientConfig, WebhookNotifier,
};
use crate::ports::{
    Clock, ExecutionStore, JobStore, KeyStore, Notifier, PageRequest, Resolver, ScheduleReconciler,
    StoreResult, SystemClock, TeamStore,
};
use crate::service::JobService;
use crate::targets::{TargetGuard, TargetPolicy};

/// The AWS clients the adapters receive.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
}

impl AwsClients {
    pub fn new(config: &aws_types::SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            scheduler: aws_sdk_scheduler::Client::new(config),
        }
    }
}

/// The AWS resources the template creates (names and ARNs), as the functions receive them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedResources {
    pub tables: Tables,
    pub run_queue_url: String,
    pub run_queue_arn: String,
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
    pub schedule_group: String,
    pub scheduler_role_arn: String,
}

/// Settings with defaults, the same names and meanings as `krafter serve`'s.
#[derive(Clone, Debug)]
pub struct HostedSettings {
    pub rate_limit: u32,
    pub rate_window_secs: u32,
    pub max_jobs_per_team: u64,
    pub execution_retention: Duration,
    /// Executions kept per job past the retention period.
    pub keep_executions: u32,
    pub notify_url: Option<url::Url>,
    pub retry_backoff: Duration,
    /// How long a key lookup is cached by an API instance: a revoked key stops working
    /// within this time.
    pub key_cache: Duration,
    /// Webhooks may not reach private or internal addresses unless this says otherwise
    /// (`KRAFTER_DENY_PRIVATE_TARGETS=false`, for a private deployment).
    pub target_policy: TargetPolicy,
    /// How target names resolve (the system resolver; a stub in tests).
    pub resolver: Arc<dyn Resolver>,
}

impl Default for HostedSettings {
    fn default() -> Self {
        Self {
            rate_limit: 100,
            rate_window_secs: 60,
            max_jobs_per_team: 1_000,
            execution_retention: Duration::from_secs(30 * 86_400),
            keep_executions: 100,
            notify_url: None,
            retry_backoff: Duration::from_secs(15),
            key_cache: Duration::from_secs(30),
            target_policy: TargetPolicy::DenyPrivate,
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// A missing or invalid setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Reads settings from the environment through `get` (tests pass a map).
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        (self.0)(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::Missing(name))
    }

    fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
        &self,
        name: &'static str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ConfigError> {
        let Some(raw) = (self.0)(name).filter(|v| !v.trim().is_empty()) else {
            return Ok(default);
        };
        let value: T = raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("{raw:?} is not a number"),
        })?;
        if value < min || value > max {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("{value} is outside {min}..={max}"),
            });
        }
        Ok(value)
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match (self.0)(name).as_deref().map(str::trim) {
            None | Some("") => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                name,
                reason: format!("{other:?} is not true or false"),
            }),
        }
    }

    /// The table names only (what the operator commands need).
    pub fn tables(&self) -> Result<Tables, ConfigError> {
        Ok(Tables {
            jobs: self.required("KRAFTER_JOBS_TABLE")?,
            executions: self.required("KRAFTER_EXECUTIONS_TABLE")?,
            keys: self.required("KRAFTER_KEYS_TABLE")?,
            teams: self.required("KRAFTER_TEAMS_TABLE")?,
            rate_limits: self.required("KRAFTER_RATE_LIMITS_TABLE")?,
        })
    }

    pub fn resources(&self) -> Result<HostedResources, ConfigError> {
        Ok(HostedResources {
            tables: self.tables()?,
            run_queue_url: self.required("KRAFTER_RUN_QUEUE_URL")?,
            run_queue_arn: self.required("KRAFTER_RUN_QUEUE_ARN")?,
            dead_letter_queue_url: (self.0)("KRAFTER_DEAD_LETTER_QUEUE_URL").unwrap_or_default(),
            dead_letter_queue_arn: self.required("KRAFTER_DEAD_LETTER_QUEUE_ARN")?,
            schedule_group: self.required("KRAFTER_SCHEDULE_GROUP")?,
            scheduler_role_arn: self.required("KRAFTER_SCHEDULER_ROLE_ARN")?,
        })
    }

    pub fn settings(&self) -> Result<HostedSettings, ConfigError> {
        let d = HostedSettings::default();
        let notify_url = match (self.0)("KRAFTER_NOTIFY_URL").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(raw) => Some(
                url::Url::parse(raw.trim()).map_err(|e| ConfigError::Invalid {
                    name: "KRAFTER_NOTIFY_URL",
                    reason: e.to_string(),
                })?,
            ),
        };
        Ok(HostedSettings {
            rate_limit: self.number("KRAFTER_RATE_LIMIT", d.rate_limit, 1, 1_000_000)?,
            rate_window_secs: self.number(
                "KRAFTER_RATE_LIMIT_WINDOW_SECS",
                d.rate_window_secs,
                1,
                86_400,
            )?,
            max_jobs_per_team: self.number(
                "KRAFTER_MAX_JOBS_PER_TEAM",
                d.max_jobs_per_team,
                1,
                10_000_000,
            )?,
            execution_retention: Duration::from_secs(
                86_400 * self.number::<u64>("KRAFTER_EXECUTION_RETENTION_DAYS", 30, 1, 3_650)?,
            ),
            keep_executions: d.keep_executions,
            notify_url,
            retry_backoff: Duration::from_millis(self.number(
                "KRAFTER_RETRY_BACKOFF_MS",
                15_000,
                1,
                3_600_000,
            )?),
            key_cache: Duration::from_secs(self.number("KRAFTER_KEY_CACHE_SECS", 30, 0, 60)?),
            target_policy: if self.flag("KRAFTER_DENY_PRIVATE_TARGETS", true)? {
                TargetPolicy::DenyPrivate
            } else {
                TargetPolicy::AllowPrivate
            },
            resolver: d.resolver,
        })
    }
}

/// The process environment.
pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|name: &str| std::env::var(name).ok())
}

/// An environment given as pairs (tests, tools).
pub fn process_env_from<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> Env<impl Fn(&str) -> Option<String> + 'a> {
    Env(move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

/// Every hosted part, assembled once per function instance (at cold start).
#[derive(Clone)]
pub struct Hosted {
    pub jobs: Arc<dyn JobStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub keys: Arc<dyn KeyStore>,
    pub teams: Arc<dyn TeamStore>,
    pub queue: SqsRunQueue,
    pub schedules: EventBridgeScheduleSync,
    pub clock: Arc<dyn Clock>,
    pub settings: HostedSettings,
    clients: AwsClients,
    resources: HostedResources,
}

/// What a reconcile pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub jobs: u64,
    pub schedules_repaired: u64,
    pub orphans_removed: u64,
    pub executions_pruned: u64,
}

impl Hosted {
    pub fn new(clients: AwsClients, resources: HostedResources, settings: HostedSettings) -> Self {
        Self::with_clock(clients, resources, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(
        clients: AwsClients,
        resources: HostedResources,
        settings: HostedSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let stores = DynamoStores::new(
            clients.dynamodb.clone(),
            &resources.tables,
            settings.execution_retention,
        );
        let schedules = EventBridgeScheduleSync::new(
            clients.scheduler.clone(),
            SchedulerTarget {
                group: resources.schedule_group.clone(),
                queue_arn: resources.run_queue_arn.clone(),
                role_arn: resources.scheduler_role_arn.clone(),
                dead_letter_arn: resources.dead_letter_queue_arn.clone(),
            },
            clock.clone(),
        );
        Self {
            jobs: Arc::new(stores.jobs),
            executions: Arc::new(stores.executions),
            keys: Arc::new(stores.keys),
            teams: Arc::new(stores.teams),
            queue: SqsRunQueue::new(clients.sqs.clone(), &resources.run_queue_url, clock.clone()),
            schedules,
            clock,
            settings,
            clients,
            resources,
        }
    }

    pub fn clients(&self) -> &AwsClients {
        &self.clients
    }

    pub fn resources(&self) -> &HostedResources {
        &self.resources
    }

    pub fn service(&self) -> JobService {
        JobService {
            jobs: self.jobs.clone(),
            executions: self.executions.clone(),
            queue: Arc::new(self.queue.clone()),
            schedules: Arc::new(self.schedules.clone()),
            clock: self.clock.clone(),
            max_jobs_per_team: self.settings.max_jobs_per_team,
            targets: self.targets(),
        }
    }

    fn targets(&self) -> TargetGuard {
        TargetGuard::new(self.settings.target_policy, self.settings.resolver.clone())
    }

    /// The API: the same router as the embedded server, on the hosted adapters, with keys
    /// cached briefly per instance and the rate limit counted in DynamoDB across instances.
    pub fn router(&self) -> axum::Router {
        router(ApiState {
            service: self.service(),
            keys: Arc::new(CachedKeyStore::new(
                self.keys.clone(),
                self.settings.key_cache,
                self.clock.clone(),
            )),
            limiter: Arc::new(DynamoRateLimiter::new(
                self.clients.dynamodb.clone(),
                &self.resources.tables.rate_limits,
                self.settings.rate_limit,
                self.settings.rate_window_secs,
            )),
            clock: self.clock.clone(),
        })
    }

    /// The executor function's handler of run queue batches.
    pub fn run_handler(&self) -> Result<RunHandler, reqwest::Error> {
        let notifier: Arc<dyn Notifier> = match &self.settings.notify_url {
            Some(url) => Arc::new(WebhookNotifier::new(url.clone())?),
            None => Arc::new(LogNotifier),
        };
        let executor = Executor {
            jobs: self.jobs.clone(),
            executions: self.executions.clone(),
            queue: Arc::new(self.queue.clone()),
            client: Arc::new(ReqwestWebhookClient::new(
                &WebhookClientConfig::default(),
                self.targets(),
            )?),
            teams: Arc::new(CachedTeamStore::new(
                self.teams.clone(),
                SIGNING_SECRET_CACHE,
                self.clock.clone(),
            )),
            notifier,
            clock: self.clock.clone(),
            retry: RetryPolicy {
                base: self.settings.retry_backoff,
                ..RetryPolicy::default()
            },
            notices: NoticeDelivery::Awaited,
        };
        Ok(RunHandler {
            executor,
            jobs: self.jobs.clone(),
            queue: Arc::new(self.queue.clone()),
            schedules: Arc::new(self.schedules.clone()),
            clock: self.clock.clone(),
        })
    }

    /// The reconcile pass (run on a schedule): repairs every job's schedules where they
    /// drifted from the store, removes the schedules of deleted jobs, and prunes executions.
    pub async fn reconcile(&self) -> StoreResult<ReconcileReport> {
        let mut report = reconcile(self.jobs.as_ref(), &self.schedules, 100).await?;
        let cutoff = self.clock.now()
            - chrono::Duration::from_std(self.settings.execution_retention).unwrap_or_default();
        report.executions_pruned = self
            .executions
            .prune(cutoff, self.settings.keep_executions)
            .await?;
        info!(?report, "reconcile pass finished");
        Ok(report)
    }
}

/// Repairs the schedules of every stored job, a page at a time, then removes the schedules
/// whose job is gone. Existing schedules are listed first: a schedule listed then belongs to
/// a job that existed then, so the scan that follows sees it unless it was deleted since.
pub async fn reconcile(
    jobs: &dyn JobStore,
    schedules: &dyn ScheduleReconciler,
    page_size: u32,
) -> StoreResult<ReconcileReport> {
    let existing = schedules.existing().await?;
    let mut report = ReconcileReport::default();
    let mut known = HashSet::new();
    let mut after = None;
    loop {
        let page = jobs
            .scan(PageRequest {
                limit: Some(page_size),
                after,
            })
            .await?;
        report.jobs += page.items.len() as u64;
        known.extend(page.items.iter().map(|j| j.id));
        report.schedules_repaired += schedules.repair(&page.items, &existing).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    report.orphans_removed = schedules.remove_orphans(&existing, &known).await?;
    Ok(report)
}

/// Logs for CloudWatch: no colours, no timestamps (Lambda adds them), level from `RUST_LOG`
/// (default `info`).
pub fn init_lambda_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// The executor function's whole job for one SQS event: handle its records and report the
/// ones that failed (`ReportBatchItemFailures`), so that only those come again.
pub async fn handle_sqs_event(
    handler: &RunHandler,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let deliveries: Vec<Delivery> = event
        .records
        .into_iter()
        .filter_map(|r| {
            Some(Delivery {
                id: r.message_id?,
                body: r.body.unwrap_or_default(),
            })
        })
        .collect();
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for id in handler.handle(&deliveries).await {
        response.add_failure(id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_denied_unless_the_deployment_says_false() {
        let policy =
            |pairs: &[(&str, &str)]| process_env_from(pairs).settings().map(|s| s.target_policy);
        assert_eq!(policy(&[]).unwrap(), TargetPolicy::DenyPrivate);
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "true")]).unwrap(),
            TargetPolicy::DenyPrivate
        );
        assert_eq!(
            policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "false")]).unwrap(),
            TargetPolicy::AllowPrivate
        );
        let err = policy(&[("KRAFTER_DENY_PRIVATE_TARGETS", "nope")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "KRAFTER_DENY_PRIVATE_TARGETS is invalid: \"nope\" is not true or false"
        );
    }
}
