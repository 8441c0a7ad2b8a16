//! Ports: what the core needs from the outside world. Adapters live in `adapters/`, named by
//! technology (`SqliteJobStore`, later `DynamoJobStore`), and receive their clients.
//! Every store query is keyed by team: one team can never read or touch another's data.

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    ApiKey, AttemptOutcome, AuditEntry, AuditFilter, AuditId, Execution, ExecutionFilter,
    ExecutionId, IdempotencyKey, IdempotencyRecord, Job, JobFilter, JobId, KeyHash, KeyPrefix,
    RunMarker, RunMessage, RunStatus, SigningSecret, StoredResponse, StreakChange, TeamId,
    TeamSecrets,
};

/// A failure of a storage or messaging backend. Keeps its source; never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the storage backend failed")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
    #[error("stored data could not be read back: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn backend(e: impl StdError + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page request: newest first, starting after `after` (exclusive) when given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest<C> {
    pub limit: Option<u32>,
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    pub fn all() -> Self {
        Self {
            limit: None,
            after: None,
        }
    }
    pub fn first(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            after: None,
        }
    }
}

/// A page of results; `next` is set when more may follow.
#[derive(Clone, Debug)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// Trims the one extra item fetched to detect a following page, and names the cursor of
/// the next page (the last item kept) when there is one.
pub fn paginate<T, C>(
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

/// Reads a list in its order a chunk at a time (`fetch(after, chunk)`: the items after the
/// cursor `after`, at most `chunk` of them) and keeps those `keep` accepts, until `want` are
/// kept or the list ends. Without a filter one fetch of `want` is enough; with one, what it
/// passes over still moves the cursor on, so a filtered page continues where it stopped.
pub fn collect_matching<T, C>(
    start: Option<C>,
    want: Option<usize>,
    filtered: bool,
    mut fetch: impl FnMut(Option<C>, Option<usize>) -> StoreResult<Vec<T>>,
    cursor: impl Fn(&T) -> C,
    keep: impl Fn(&T) -> bool,
) -> StoreResult<Vec<T>> {
    const CHUNK: usize = 256;
    let chunk = match (filtered, want) {
        (false, want) => want,
        (true, _) => Some(CHUNK),
    };
    let mut kept = Vec::new();
    let mut after = start;
    loop {
        let items = fetch(after.take(), chunk)?;
        let fetched = items.len();
        for item in items {
            after = Some(cursor(&item));
            if keep(&item) {
                kept.push(item);
                if want.is_some_and(|w| kept.len() >= w) {
                    return Ok(kept);
                }
            }
        }
        if !filtered || chunk.is_none_or(|c| fetched < c) {
            return Ok(kept);
        }
    }
}

/// A page of a list read by `fetch` (see [`collect_matching`]): the items `keep` accepts
/// after `page.after`, one more than `page.limit` read to tell whether another page
/// follows, and the cursor of the next page when one does.
pub fn filtered_page<T, C: Copy>(
    page: PageRequest<C>,
    filtered: bool,
    fetch: impl FnMut(Option<C>, Option<usize>) -> StoreResult<Vec<T>>,
    cursor: impl Fn(&T) -> C,
    keep: impl Fn(&T) -> bool,
) -> StoreResult<Page<T, C>> {
    let want = page.limit.map(|l| l as usize + 1);
    let items = collect_matching(page.after, want, filtered, fetch, &cursor, keep)?;
    Ok(paginate(items, page.limit, cursor))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    Updated,
    NotFound,
    /// Someone else changed the job since it was read; read again and retry.
    Conflict,
}

/// Whether an insert was within the team's job quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// The team already has its quota of jobs: nothing was written.
    QuotaExceeded,
}

/// What recording a run's end did to its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordedRun {
    /// Recorded; the job's `last_status` before it (`None`: the job had never run) and its
    /// failure streak before it.
    Applied {
        previous: Option<RunStatus>,
        previous_failures: u32,
    },
    /// Not recorded: the job is gone, or a later run's end is recorded already.
    Ignored,
}

/// The end of a run (its last attempt), as it affects the job's status.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub team: TeamId,
    pub job_id: JobId,
    /// The run: its end is recorded once, however often it is delivered.
    pub run_id: crate::domain::RunId,
    pub scheduled_at: DateTime<Utc>,
    pub status: RunStatus,
    /// What the run does to the job's failure streak (`StreakChange::of(status)`).
    pub streak: StreakChange,
}

/// A conditional change of a job's overlap marker.
#[derive(Clone, Debug)]
pub struct MarkerSwap {
    pub team: TeamId,
    pub job_id: JobId,
    pub expected: RunMarker,
    pub new: RunMarker,
}

/// Jobs.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Inserts a new job if its team has fewer than `max_jobs` jobs: the count and the
    /// insert are one conditional write, so the quota is exact under any concurrency.
    async fn insert(&self, job: &Job, max_jobs: u64) -> StoreResult<InsertOutcome>;
    async fn get(&self, team: &TeamId, id: JobId) -> StoreResult<Option<Job>>;
    /// The team's jobs that match `filter`, newest first.
    async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<JobId>,
        filter: &JobFilter,
    ) -> StoreResult<Page<Job, JobId>>;
    async fn count(&self, team: &TeamId) -> StoreResult<u64>;
    /// Writes the job's definition and state (`spec`, `enabled`, `generation`,
    /// `next_run_at`, `updated_at`) if its stored `version` is still `expected_version`; the
    /// stored version becomes `job.version`. Run status fields are not touched.
    async fn update(&self, job: &Job, expected_version: u64) -> StoreResult<UpdateOutcome>;
    /// Removes the job. Returns false if there was none.
    async fn delete(&self, team: &TeamId, id: JobId) -> StoreResult<bool>;
    /// Records the ends of runs on their jobs (`last_status`, `last_run_at`, the failure
    /// streak), ignoring a run older than the one already recorded and a run already
    /// recorded (a duplicate delivery). Returns what happened to each, in order.
    async fn record_run_results(&self, results: &[RunResult]) -> StoreResult<Vec<RecordedRun>>;
    /// Replaces each job's overlap marker with `new` if it is still `expected` (the core's
    /// rules decide the new one: `RunMarker::release`, `RunMarker::extended`). Touches
    /// nothing else, not even the version: it is run state, like the run status fields.
    /// Returns what happened to each, in order.
    async fn swap_run_markers(&self, swaps: &[MarkerSwap]) -> StoreResult<Vec<UpdateOutcome>>;
    /// Every job of every team, a page at a time, in an order of the store's choosing: for
    /// maintenance passes (schedule reconciliation). `next` is set when more may follow.
    async fn scan(
        &self,
        page: PageRequest<(TeamId, JobId)>,
    ) -> StoreResult<Page<Job, (TeamId, JobId)>>;
}

/// What happened when the executor asked to start an attempt.
#[derive(Clone, Debug)]
pub enum BeginOutcome {
    /// Recorded as in flight; here is the job as it is now (with the overlap marker the
    /// begin wrote), to send its request.
    Started(Box<Job>),
    /// The job was deleted, or paused since the run was made: drop the run.
    JobGone,
    /// This attempt was recorded before (a duplicate delivery, or a crash mid-attempt).
    AlreadyRecorded(Box<Execution>),
    /// Not started under the job's overlap policy: recorded as a skipped execution.
    Skipped(Box<Job>),
    /// Waits in the job's marker behind an unfinished run (`buffer_one`): the message is done.
    Buffered,
    /// Not yet (a promoted run whose marker is about to be written): deliver it again then.
    Wait(std::time::Duration),
}

/// The start of an attempt, as the executor records it before sending anything. Its
/// execution id is the attempt's (`ExecutionId::of` its run and attempt), so that a store
/// can key the record by it.
#[derive(Clone, Debug)]
pub struct AttemptStart {
    execution_id: ExecutionId,
    pub message: RunMessage,
    pub started_at: DateTime<Utc>,
    /// The job as its driver read it just before (strongly consistent: the hosted tick's
    /// read), which a store may check the attempt against instead of reading it again.
    pub job_read: Option<Arc<Job>>,
}

impl AttemptStart {
    pub fn new(message: RunMessage, started_at: DateTime<Utc>) -> Self {
        Self {
            execution_id: message.execution_id(),
            message,
            started_at,
            job_read: None,
        }
    }

    /// The start of an attempt recorded before (with the id it was recorded under).
    pub fn recorded(existing: &Execution, message: RunMessage) -> Self {
        Self {
            execution_id: existing.id,
            message,
            started_at: existing.started_at,
            job_read: None,
        }
    }

    /// This start, with the job as its driver just read it.
    pub fn with_job_read(mut self, job: Option<Arc<Job>>) -> Self {
        self.job_read = job;
        self
    }

    pub fn execution_id(&self) -> ExecutionId {
        self.execution_id
    }
}

/// Executions: one record per attempt.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// For each start, atomically: check the job exists with the message's generation, and
    /// record the attempt as in flight unless (run, attempt) is recorded already, as the
    /// job's overlap policy admits it (`Job::admit`, its marker written in the same step).
    async fn begin_attempts(&self, starts: &[AttemptStart]) -> StoreResult<Vec<BeginOutcome>>;
    /// Records how in-flight attempts ended, each named by the start that began it. An
    /// attempt already finished, or never begun, is left as it is.
    async fn finish_attempts(&self, done: &[(AttemptStart, AttemptOutcome)]) -> StoreResult<()>;
    /// Finished attempts of a job that match `filter`, newest first (attempts in flight
    /// are not listed).
    async fn list(
        &self,
        team: &TeamId,
        job: JobId,
        page: PageRequest<ExecutionId>,
        filter: &ExecutionFilter,
    ) -> StoreResult<Page<Execution, ExecutionId>>;
    async fn get(
        &self,
        team: &TeamId,
        job: JobId,
        id: ExecutionId,
    ) -> StoreResult<Option<Execution>>;
    async fn delete_for_job(&self, team: &TeamId, job: JobId) -> StoreResult<()>;
    /// Deletes finished executions started before `older_than`, except each job's
    /// `keep_latest` most recent. Returns how many were deleted.
    async fn prune(&self, older_than: DateTime<Utc>, keep_latest: u32) -> StoreResult<u64>;
}

/// API keys, looked up by hash.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert(&self, key: &ApiKey) -> StoreResult<()>;
    async fn find_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>>;
    /// Every key, or every key of one team, oldest first.
    async fn list(&self, team: Option<&TeamId>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes the keys that start with `prefix` (normally one). Returns them.
    async fn revoke(&self, prefix: &KeyPrefix, at: DateTime<Utc>) -> StoreResult<Vec<ApiKey>>;
    async fn is_empty(&self) -> StoreResult<bool>;
    /// Records that the key authenticated a request at `at`.
    async fn touch(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()>;
}

/// Teams' signing secrets. The rules (create once, rotate with a grace period) live in the
/// core (`service::ensure_team`, `service::rotate_signing_secret`); stores only read and
/// write conditionally.
#[async_trait]
pub trait TeamStore: Send + Sync {
    async fn get(&self, team: &TeamId) -> StoreResult<Option<TeamSecrets>>;
    /// Stores a new team's secrets; false (and nothing written) if the team exists.
    async fn insert(&self, secrets: &TeamSecrets) -> StoreResult<bool>;
    /// Replaces the team's secrets if its current secret is still `expected`; false (and
    /// nothing written) otherwise.
    async fn replace(&self, secrets: &TeamSecrets, expected: &SigningSecret) -> StoreResult<bool>;
}

/// The audit log, per team. What is recorded is the API's (`api/audit.rs`); stores keep
/// entries for their retention and list them newest first.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// The team's entries that match `filter`, newest first.
    async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<AuditId>,
        filter: &AuditFilter,
    ) -> StoreResult<Page<AuditEntry, AuditId>>;
    /// Deletes entries older than `older_than`; returns how many (a store whose items
    /// expire by themselves, DynamoDB's TTL, may delete none here).
    async fn prune(&self, older_than: DateTime<Utc>) -> StoreResult<u64>;
}

/// What claiming an idempotency key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is this request's now: handle it, then `complete` (or `release`) the key.
    Claimed,
    /// The key is known (and not expired): the record as it is, done or still in progress.
    Existing(IdempotencyRecord),
}

/// Idempotency keys, per team. The rules (what a retry gets, when a key is refused) are the
/// API's (`api/idempotency.rs`); stores only write conditionally.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Stores the claim unless the team has a record for the key that has not expired
    /// (one conditional write: of concurrent claims, one wins).
    async fn claim(&self, record: &IdempotencyRecord) -> StoreResult<IdempotencyClaim>;
    /// Stores the response of the claimed key.
    async fn complete(
        &self,
        team: &TeamId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> StoreResult<()>;
    /// Forgets a claim whose request failed (a 5xx), so that a retry may try again.
    async fn release(&self, team: &TeamId, key: &IdempotencyKey) -> StoreResult<()>;
    /// Deletes records that expired before `now`. Returns how many.
    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// Where runs wait to be executed. At-least-once: a message may be delivered twice.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Enqueues attempts to be delivered at (not before) their `deliver_at`.
    async fn enqueue(&self, runs: &[(RunMessage, DateTime<Utc>)]) -> StoreResult<()>;
}

/// Keeps whatever fires scheduled runs (an in-process timer, EventBridge Scheduler) in step
/// with the stored job. Called after every store write that changes when a job fires.
#[async_trait]
pub trait ScheduleSync: Send + Sync {
    async fn job_changed(&self, job: &Job) -> StoreResult<()>;
    async fn job_deleted(&self, team: &TeamId, id: JobId) -> StoreResult<()>;
}

/// What bringing schedules in step took: the Scheduler calls made, the schedules changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repair {
    pub calls: u64,
    pub changed: u64,
}

/// A page of the schedules that exist, and where the next page starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulePage {
    pub names: Vec<String>,
    pub next: Option<String>,
}

/// A scheduler whose schedules live outside the store (EventBridge Scheduler), where they
/// can drift from the jobs: a failed call after a store write, a hand edit. The stream sync
/// (`hosted::sync`) and the slow sweep (`hosted::reconcile`) use it to repair them.
#[async_trait]
pub trait ScheduleReconciler: Send + Sync {
    /// Reads each schedule the job wants; writes the missing and the different ones.
    async fn repair(&self, job: &Job) -> StoreResult<Repair>;
    /// Makes the job's schedules exactly what it says: `repair`, and every other schedule
    /// name the job could have deleted (all of them for a deleted job, `None`).
    async fn converge(&self, id: JobId, job: Option<&Job>) -> StoreResult<Repair>;
    /// A page of the schedules that exist (one call), from `token`.
    async fn list(&self, token: Option<String>) -> StoreResult<SchedulePage>;
    /// The job a schedule name belongs to, if it is a job's.
    fn job_of(&self, name: &str) -> Option<JobId>;
    /// The names of the schedules `job` wants.
    fn wanted_names(&self, job: &Job) -> Vec<String>;
    /// The team whose job a schedule fires (read from the schedule: one call).
    async fn owner(&self, name: &str) -> StoreResult<Option<TeamId>>;
    /// Deletes a schedule; false if it was gone.
    async fn remove(&self, name: &str) -> StoreResult<bool>;
}

/// Small named values a background process keeps between runs (the sweep's place).
#[async_trait]
pub trait StateStore: Send + Sync {
    async fn load(&self, name: &str) -> StoreResult<Option<String>>;
    async fn save(&self, name: &str, value: &str) -> StoreResult<()>;
}

/// A rate limiter decision, for the `x-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_after: u32,
}

impl RateDecision {
    /// The decision for a request that is not counted on its own (an MCP tool call's REST
    /// request: its MCP request was counted).
    pub const UNCOUNTED: Self = Self {
        allowed: true,
        limit: 0,
        remaining: 0,
        reset_after: 0,
    };
}

/// Per-caller request counting (per team, or per client address before authentication).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    async fn hit(&self, bucket: &str, now: DateTime<Utc>) -> StoreResult<RateDecision>;
}

/// A notice that a job's run failed for good, or that it recovered.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Notice {
    pub event: NoticeEvent,
    pub team: TeamId,
    pub job_id: JobId,
    pub job_name: String,
    pub run_id: crate::domain::RunId,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    pub scheduled_at: DateTime<Utc>,
    pub attempts: u32,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    #[serde(serialize_with = "crate::domain::time::serialize")]
    pub at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeEvent {
    JobFailed,
    JobRecovered,
    /// The job paused itself: its failure streak reached `auto_disable_after_failures`.
    JobDisabled,
}

/// Where a notice goes and how it is written, besides what it says.
#[derive(Clone, Debug)]
pub struct NoticeRoute {
    /// The job's own notice URL; `None`: the deployment's.
    pub url: Option<crate::domain::TargetUrl>,
    pub format: crate::domain::NoticeFormat,
    /// The team's signing secrets: notices are signed like webhooks.
    pub secrets: Option<TeamSecrets>,
}

/// Delivers failure, recovery and auto-disable notices.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, notice: &Notice, route: &NoticeRoute);
}

/// The time. A port so that tests can control it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The outgoing webhook request of one attempt.
#[derive(Clone, Debug)]
pub struct WebhookCall {
    pub job: Arc<Job>,
    pub execution_id: ExecutionId,
    pub run_id: crate::domain::RunId,
    pub attempt: u32,
    /// The team's signing secrets.
    pub secrets: TeamSecrets,
}

/// What came back from a webhook call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookResponse {
    pub outcome: AttemptOutcome,
    /// `Retry-After`, in seconds, when the target sent one with a 429 or 503.
    pub retry_after: Option<u64>,
}

impl WebhookResponse {
    /// An attempt that failed before any request was sent.
    pub fn failed_before_sending(error: String, at: DateTime<Utc>) -> Self {
        Self {
            outcome: AttemptOutcome {
                status: RunStatus::Failed,
                http_status: None,
                response_body: None,
                error: Some(error),
                duration_ms: 0,
                finished_at: crate::domain::time::whole_seconds(at),
            },
            retry_after: None,
        }
    }
}

/// Makes webhook calls.
#[async_trait]
pub trait WebhookClient: Send + Sync {
    async fn call(&self, call: &WebhookCall) -> WebhookResponse;
}

/// Resolves host names to addresses: the system resolver in production, a stub in tests (so
/// DNS answers, including ones that change between lookups, can be injected).
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<std::net::SocketAddr>>;
}

impl std::fmt::Debug for dyn Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Resolver")
    }
}
