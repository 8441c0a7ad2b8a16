//! Idempotent requests. A mutating call (POST, PATCH, DELETE under `/api/v1/cron`, the
//! schedule preview aside: it changes nothing) may carry `Idempotency-Key`; then, per team:
//! - the first request with the key claims it (a conditional write) and is handled; its
//!   response (unless a 5xx) is stored for 24 hours;
//! - a retry with the same key and the same method, path and body gets that response
//!   again, with `Idempotent-Replayed: true`, and changes nothing; a retry that arrives
//!   while the first is still being handled waits for it;
//! - the same key with a different request is refused (422, `details.idempotency_key`).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::{ApiError, ApiState, Caller};
use crate::domain::{
    FieldErrors, IdempotencyKey, IdempotencyRecord, RequestFingerprint, StoredResponse,
};
use crate::ports::IdempotencyClaim;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// How long a retry waits for the first request with its key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);

/// A stored response is at most this long (a job, or an error); longer ones are not kept.
const MAX_STORED_BODY: usize = 256 * 1024;

pub async fn idempotent(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(HEADER).cloned() else {
        return next.run(request).await;
    };
    let caller = request.extensions().get::<Caller>().cloned();
    let (Some(caller), true) = (caller, is_mutating(&request)) else {
        return next.run(request).await;
    };
    let Some(key) = key
        .to_str()
        .ok()
        .and_then(|k| IdempotencyKey::parse(k).ok())
    else {
        return refused("must be 1 to 255 visible ASCII characters");
    };
    match handle(&state, caller, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

fn is_mutating(request: &Request) -> bool {
    let m = request.method();
    (m == Method::POST || m == Method::PATCH || m == Method::DELETE)
        && request.uri().path() != "/api/v1/cron/schedules/preview"
}

fn refused(message: &str) -> Response {
    ApiError::Validation(FieldErrors::single("idempotency_key", message)).into_response()
}

async fn handle(
    state: &ApiState,
    caller: Caller,
    key: IdempotencyKey,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let (parts, body) = request.into_parts();
    let bytes = super::handlers::read_body(&parts.headers, body)
        .await
        .map_err(IntoResponse::into_response)?;
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = RequestFingerprint::of(parts.method.as_str(), target, &bytes);
    let claim = IdempotencyRecord::claim(
        caller.team.clone(),
        key.clone(),
        fingerprint,
        state.clock.now(),
    );
    if let Some(earlier) = first_response(state, &claim).await? {
        return Ok(replay(earlier));
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    Ok(remember(state, &claim, response).await)
}

/// Claims the key; or, when a request with it came first, its response (waiting for it
/// while it is handled).
async fn first_response(
    state: &ApiState,
    claim: &IdempotencyRecord,
) -> Result<Option<StoredResponse>, Response> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let mut pause = Duration::from_millis(5);
    loop {
        let existing = match state.idempotency.claim(claim).await {
            Ok(IdempotencyClaim::Claimed) => return Ok(None),
            Ok(IdempotencyClaim::Existing(e)) => e,
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        if existing.fingerprint != claim.fingerprint {
            return Err(refused("was already used for a different request"));
        }
        if let Some(response) = existing.response {
            return Ok(Some(response));
        }
        if tokio::time::Instant::now() >= deadline {
            let e = std::io::Error::other("the first request with this key did not finish");
            return Err(ApiError::Internal(Box::new(e)).into_response());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Stores the response of the claimed key (a 5xx releases the key instead, so that a
/// retry is handled again) and returns it.
async fn remember(state: &ApiState, claim: &IdempotencyRecord, response: Response) -> Response {
    let (team, key) = (&claim.team, &claim.key);
    if response.status().is_server_error() {
        if let Err(e) = state.idempotency.release(team, key).await {
            warn!(error = %e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_STORED_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        location: parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    if let Err(e) = state.idempotency.complete(team, key, &stored).await {
        warn!(error = %e, "could not store the response of an idempotency key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The first request's response, again.
fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}
