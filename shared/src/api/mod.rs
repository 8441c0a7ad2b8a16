//! The API as one axum `Router`: served by `axum::serve` in the embedded binary and by
//! `lambda_http::run` in the hosted API function.

mod audit;
mod console;
mod error;
mod gate;
mod handlers;
mod idempotency;
pub mod inproc;
mod json;
mod mcp;
mod query;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use error::ApiError;
pub use gate::Caller;
pub use json::{parse_object, read_job_draft, read_preview};

use crate::ports::{AuditStore, Clock, IdempotencyStore, KeyStore, RateLimiter, TeamStore};
use crate::service::JobService;

/// The largest request body accepted (256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The longest request target (path and query) accepted: 414 past it.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Upcoming runs listed or previewed at once: at most this many (10 unless asked).
pub const MAX_UPCOMING: usize = 100;
/// The MCP endpoint (Streamable HTTP).
pub const MCP_PATH: &str = "/api/v1/mcp";
/// How long a client may take to send a request body: 408 past it.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct ApiState {
    pub service: JobService,
    pub keys: Arc<dyn KeyStore>,
    pub limiter: Arc<dyn RateLimiter>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub audit: Arc<dyn AuditStore>,
    pub teams: Arc<dyn TeamStore>,
    pub clock: Arc<dyn Clock>,
    /// The path prefix of the web console's links (`KRAFTER_CONSOLE_BASE`).
    pub console_base: String,
}

/// The REST API and, beside it, the MCP endpoint and the web console that call into it.
/// All pass the gate.
pub fn router(state: ApiState) -> Router {
    let rest = rest_router(state.clone());
    Router::new()
        .route_service(MCP_PATH, mcp::service(rest.clone()))
        .merge(console::routes(state.clone(), rest.clone()))
        .layer(axum::middleware::from_fn_with_state(state, gate::gate))
        .merge(rest)
}

fn rest_router(state: ApiState) -> Router {
    let cron = Router::new()
        .route("/jobs", get(handlers::list_jobs).post(handlers::create_job))
        .route(
            "/jobs/{id}",
            get(handlers::get_job)
                .patch(handlers::update_job)
                .delete(handlers::delete_job),
        )
        .route("/jobs/{id}/trigger", post(handlers::trigger_job))
        .route("/jobs/{id}/backfill", post(handlers::backfill_job))
        .route("/jobs/{id}/pause", post(handlers::pause_job))
        .route("/jobs/{id}/resume", post(handlers::resume_job))
        .route("/jobs/{id}/executions", get(handlers::list_executions))
        .route("/jobs/{id}/upcoming", get(handlers::upcoming_runs))
        .route("/schedules/preview", post(handlers::preview_schedule))
        .route("/audit", get(audit::list_audit))
        .route("/team/signing-secret", get(audit::show_signing_secret))
        .route(
            "/team/signing-secret/rotate",
            post(audit::rotate_signing_secret),
        )
        .route(
            "/jobs/{id}/executions/{execution_id}",
            get(handlers::get_execution),
        );
    Router::new()
        .nest("/api/v1/cron", cron)
        .route("/api/v1/health", get(handlers::health))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        // Inside the gate: it runs for authenticated, admitted requests only.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .with_state(state)
}
