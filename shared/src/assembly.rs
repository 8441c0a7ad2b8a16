//! The application assembled once, for both runtimes: each runtime hands over its adapters
//! (a [`Backend`]) and the [`Settings`]; the job service, the executor engine and the API
//! router are built here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::memory::CachedTeamStore;
use crate::api::{ApiState, router};
use crate::executor::{
    Executor, NoticeDelivery, ReqwestWebhookClient, RetryPolicy, WebhookClientConfig,
    WebhookNotifier,
};
use crate::ports::{
    AuditStore, Clock, ExecutionStore, IdempotencyStore, JobStore, KeyStore, Notifier, RateLimiter,
    Resolver, RunQueue, ScheduleSync, TeamStore,
};
use crate::service::JobService;
use crate::settings::Settings;
use crate::targets::TargetGuard;

/// A runtime's adapters.
#[derive(Clone)]
pub struct Backend {
    pub jobs: Arc<dyn JobStore>,
    pub executions: Arc<dyn ExecutionStore>,
    /// The keys as the API reads them (the hosted API caches lookups per instance).
    pub keys: Arc<dyn KeyStore>,
    pub teams: Arc<dyn TeamStore>,
    pub queue: Arc<dyn RunQueue>,
    pub schedules: Arc<dyn ScheduleSync>,
    pub limiter: Arc<dyn RateLimiter>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub audit: Arc<dyn AuditStore>,
    pub clock: Arc<dyn Clock>,
    /// How webhook target names resolve (the system resolver; a stub in tests).
    pub resolver: Arc<dyn Resolver>,
}

/// How the runtime drives the executor.
#[derive(Clone, Copy, Debug)]
pub struct ExecutorMode {
    pub notices: NoticeDelivery,
    /// How long the executor caches a team's signing secrets: a rotation made by another
    /// process is used within this time.
    pub signing_secret_cache: Duration,
}

/// The assembled application. Parts are built on demand: the hosted API function never
/// builds the executor's HTTP client, the executor function never builds the router.
#[derive(Clone)]
pub struct Assembly {
    pub backend: Backend,
    pub settings: Settings,
    pub executor_mode: ExecutorMode,
}

impl Assembly {
    pub fn targets(&self) -> TargetGuard {
        TargetGuard::new(self.settings.target_policy, self.backend.resolver.clone())
    }

    pub fn service(&self) -> JobService {
        let b = &self.backend;
        JobService {
            jobs: b.jobs.clone(),
            executions: b.executions.clone(),
            queue: b.queue.clone(),
            schedules: b.schedules.clone(),
            clock: b.clock.clone(),
            max_jobs_per_team: self.settings.max_jobs_per_team,
            targets: self.targets(),
        }
    }

    /// The API, on whichever adapters the runtime gave.
    pub fn router(&self) -> axum::Router {
        router(ApiState {
            service: self.service(),
            keys: self.backend.keys.clone(),
            limiter: self.backend.limiter.clone(),
            idempotency: self.backend.idempotency.clone(),
            audit: self.backend.audit.clone(),
            teams: self.backend.teams.clone(),
            clock: self.backend.clock.clone(),
            console_base: self.settings.console_base.clone(),
        })
    }

    /// The executor engine, with its HTTP client and notifier.
    pub fn executor(&self) -> Result<Executor, reqwest::Error> {
        let b = &self.backend;
        let notifier: Arc<dyn Notifier> = Arc::new(WebhookNotifier::new(
            self.settings.notify_url.clone(),
            self.targets(),
            b.clock.clone(),
        )?);
        Ok(Executor {
            jobs: b.jobs.clone(),
            executions: b.executions.clone(),
            queue: b.queue.clone(),
            client: Arc::new(ReqwestWebhookClient::new(
                &WebhookClientConfig::default(),
                self.targets(),
                b.clock.clone(),
            )?),
            teams: Arc::new(CachedTeamStore::new(
                b.teams.clone(),
                self.executor_mode.signing_secret_cache,
                b.clock.clone(),
            )),
            notifier,
            schedules: b.schedules.clone(),
            clock: b.clock.clone(),
            retry: RetryPolicy {
                base: self.settings.retry_backoff,
                ..RetryPolicy::default()
            },
            notices: self.executor_mode.notices,
        })
    }
}
