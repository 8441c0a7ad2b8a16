//! The hosted backend's wiring: the AWS adapters handed to the one assembly (the API, the
//! executor's queue handler) and the reconcile pass, from configuration read from the
//! environment. The functions in `functions/` only build the AWS clients, call this and run.

mod config;
mod lambda;
mod metrics;
mod reconcile;
mod runs;
mod sync;

use std::sync::Arc;

use tracing::info;

pub use config::{ConfigError, Env, HostedResources, process_env, process_env_from};
pub use lambda::{handle_dynamodb_event, handle_sqs_event, init_lambda_tracing};
pub use metrics::{flush_metrics, init_metrics};
pub use reconcile::{ORPHAN_SWEEP_EVERY, ReconcileReport, Start, Sweep, SweepPace};
pub use runs::{Delivery, RunHandler};
pub use sync::{JobChange, SyncHandler, SyncReport};

use crate::adapters::dns::SystemResolver;
use crate::adapters::dynamodb::{DynamoRateLimiter, DynamoStores, DynamoTeamStore};
use crate::adapters::eventbridge::{EventBridgeScheduleSync, SchedulerTarget};
use crate::adapters::memory::CachedKeyStore;
use crate::adapters::sqs::SqsRunQueue;
use crate::assembly::{Assembly, Backend, ExecutorMode};
use crate::executor::{NoticeDelivery, SIGNING_SECRET_CACHE};
use crate::ports::{
    Clock, ExecutionStore, JobStore, KeyStore, Resolver, StoreResult, SystemClock, TeamStore,
};
use crate::service::JobService;
use crate::settings::{KEEP_EXECUTIONS, Settings};

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
    pub settings: Settings,
    /// The sweep's state (in the teams table).
    state: DynamoTeamStore,
    sweep_slice: std::time::Duration,
    assembly: Assembly,
    clients: AwsClients,
    resources: HostedResources,
}

impl Hosted {
    pub fn new(clients: AwsClients, resources: HostedResources, settings: Settings) -> Self {
        Self::with_clock(clients, resources, settings, Arc::new(SystemClock))
    }

    pub fn with_clock(
        clients: AwsClients,
        resources: HostedResources,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_ports(
            clients,
            resources,
            settings,
            clock,
            Arc::new(SystemResolver),
        )
    }

    /// With a clock and a resolver of the caller's (tests).
    pub fn with_ports(
        clients: AwsClients,
        resources: HostedResources,
        settings: Settings,
        clock: Arc<dyn Clock>,
        resolver: Arc<dyn Resolver>,
    ) -> Self {
        let stores = DynamoStores::new(
            clients.dynamodb.clone(),
            &resources.tables,
            settings.execution_retention,
            settings.audit_retention,
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
        let queue = SqsRunQueue::new(clients.sqs.clone(), &resources.run_queue_url, clock.clone());
        let keys: Arc<dyn KeyStore> = Arc::new(stores.keys);
        let state = stores.teams.clone();
        let assembly = Assembly {
            backend: Backend {
                jobs: Arc::new(stores.jobs),
                executions: Arc::new(stores.executions),
                // Keys are cached briefly per instance: a revoked key stops working within
                // `key_cache`.
                keys: Arc::new(CachedKeyStore::new(
                    keys.clone(),
                    settings.key_cache,
                    clock.clone(),
                )),
                teams: Arc::new(stores.teams),
                queue: Arc::new(queue.clone()),
                schedules: Arc::new(schedules.clone()),
                // Counted in DynamoDB, shared by every instance.
                limiter: Arc::new(DynamoRateLimiter::new(
                    clients.dynamodb.clone(),
                    &resources.tables.rate_limits,
                    settings.rate_limit,
                    settings.rate_window_secs,
                )),
                idempotency: Arc::new(stores.idempotency),
                audit: Arc::new(stores.audit),
                clock: clock.clone(),
                resolver,
            },
            settings: settings.clone(),
            executor_mode: ExecutorMode {
                // Before the function returns: a frozen function runs no background task.
                notices: NoticeDelivery::Awaited,
                signing_secret_cache: SIGNING_SECRET_CACHE,
            },
        };
        Self {
            jobs: assembly.backend.jobs.clone(),
            executions: assembly.backend.executions.clone(),
            keys,
            teams: assembly.backend.teams.clone(),
            queue,
            schedules,
            clock,
            settings,
            state,
            sweep_slice: SWEEP_SLICE,
            assembly,
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
        self.assembly.service()
    }

    /// The API: the same router as the embedded server, on the hosted adapters.
    pub fn router(&self) -> axum::Router {
        self.assembly.router()
    }

    /// The executor function's handler of run queue batches.
    pub fn run_handler(&self) -> Result<RunHandler, reqwest::Error> {
        Ok(RunHandler {
            executor: self.assembly.executor()?,
            jobs: self.jobs.clone(),
            queue: Arc::new(self.queue.clone()),
            schedules: Arc::new(self.schedules.clone()),
            clock: self.clock.clone(),
        })
    }

    /// With reconcile invocations that sweep for `slice` (tests of a sweep in slices).
    pub fn with_sweep_slice(mut self, slice: std::time::Duration) -> Self {
        self.sweep_slice = slice;
        self
    }

    /// The sync function's handler of the jobs table's stream.
    pub fn sync_handler(&self) -> SyncHandler {
        SyncHandler {
            jobs: self.jobs.clone(),
            schedules: Arc::new(self.schedules.clone()),
        }
    }

    /// One invocation of the reconcile function: its share of the slow sweep (which starts
    /// once per `sweep_period` and prunes executions when it does).
    pub async fn reconcile(&self) -> StoreResult<ReconcileReport> {
        self.sweep(Start::WhenDue).await
    }

    /// A whole sweep, started now and run to its end (operators, tests).
    pub async fn reconcile_all(&self) -> StoreResult<ReconcileReport> {
        self.sweep(Start::NowToTheEnd).await
    }

    async fn sweep(&self, start: Start) -> StoreResult<ReconcileReport> {
        let sweep = Sweep {
            jobs: self.jobs.as_ref(),
            schedules: &self.schedules,
            state: &self.state,
            clock: self.clock.as_ref(),
            pace: SweepPace {
                calls_per_sec: self.settings.sweep_calls_per_sec,
                period: self.settings.sweep_period,
                slice: self.sweep_slice,
            },
        };
        let prune = || async {
            let cutoff = self.clock.now()
                - chrono::Duration::from_std(self.settings.execution_retention).unwrap_or_default();
            self.executions.prune(cutoff, KEEP_EXECUTIONS).await
        };
        let report = sweep.run(start, prune).await?;
        info!(?report, "reconcile finished");
        Ok(report)
    }
}

/// How long one reconcile invocation sweeps before it saves its place: under the function's
/// 300 s timeout, with room for the prune.
const SWEEP_SLICE: std::time::Duration = std::time::Duration::from_secs(200);
