//! Domain types. Every value here is already checked: a `JobSpec` cannot hold an invalid
//! URL, a `TeamId` cannot be empty, an `ApiKey` cannot be built from a malformed secret.

mod audit;
mod execution;
mod filter;
mod firing;
mod idempotency;
mod ids;
mod input;
mod job;
mod key;
mod overlap;
mod policy;
pub mod record;
pub mod session;
mod signing;
pub mod time;
mod token;

pub use audit::{AuditAction, AuditEntry, AuditFilter, AuditOutcome};
pub use execution::{AttemptOutcome, Execution, QueuedMessage, RunMessage, RunStatus, Trigger};
pub use filter::{ExecutionFilter, JobFilter, LastStatus, Tag, Tags};
pub use firing::{BackfillRange, CatchUp, FireTime, Firing, MAX_BACKFILL, UpcomingRun};
pub use idempotency::{
    IDEMPOTENCY_WINDOW, IdempotencyKey, IdempotencyRecord, RequestFingerprint, StoredResponse,
};
pub use ids::{AuditId, ExecutionId, JobId, RunId, TeamId};
pub use input::{
    FieldErrors, GivenUrl, GivenUrls, InputError, JobDraft, JobPatch, Preview, WRITABLE_FIELDS,
    parse_job_patch, parse_new_job,
};
pub use job::{
    Body, FiringPolicy, HeaderList, HttpMethod, Job, JobName, JobSpec, MaxRetries, TargetUrl,
    TimeoutMs, WebhookSpec,
};
pub use key::{ApiKey, KeyHash, KeyPrefix, PlainKey, Scope, Scopes};
pub use overlap::{
    Admission, Jitter, LEASE_GRACE, Lease, Overlap, PROMOTION_WAIT, Released, RunMarker,
};
pub use policy::{
    AlertPolicy, Alerts, Backoff, CatchUpWindow, ExpectBody, FailureCount, NoticeFormat,
    NoticeSpec, PauseReason, RetryMs, RetrySpec, StatusMatch, StreakChange, SuccessRule,
};
pub use signing::{ROTATION_GRACE, SigningSecret, TeamSecrets};
