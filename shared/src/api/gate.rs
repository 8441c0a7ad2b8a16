//! Every request passes here: authentication, scope, per-caller rate limit, and the
//! `x-ratelimit-*` headers on every response.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{ApiError, ApiState, MAX_URI_BYTES};
use crate::domain::{PlainKey, Scope, Scopes, TeamId, time::whole_seconds};
use crate::ports::RateDecision;

/// The authenticated caller, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct Caller {
    pub team: TeamId,
    pub scopes: Scopes,
}

/// Every request runs in a span with a request id (returned as `x-request-id`), so each
/// log line it causes can be found from what the client saw.
pub async fn gate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = info_span!("request", %request_id, %method, %path, team = tracing::field::Empty);
    let started = std::time::Instant::now();
    let mut response = handle(state, request, next).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if method == Method::GET && status < 400 {
            debug!(status, elapsed_ms, "request finished");
        } else {
            info!(status, elapsed_ms, "request finished");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn handle(state: ApiState, mut request: Request, next: Next) -> Response {
    let now = state.clock.now();
    let protected = request.uri().path().starts_with("/api/v1/cron");
    let caller = if protected {
        authenticate(&state, request.headers(), now).await
    } else {
        Ok(None)
    };
    let bucket = match &caller {
        Ok(Some(c)) => format!("team:{}", c.team),
        _ => format!("addr:{}", client_addr(&request)),
    };
    let decision = match state.limiter.hit(&bucket, now).await {
        Ok(d) => d,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut response = if !decision.allowed {
        ApiError::RateLimited {
            retry_after: decision.reset_after.max(1),
        }
        .into_response()
    } else {
        match caller {
            // Checked after the rate limit, so that a flood of long URIs is limited too.
            _ if request
                .uri()
                .path_and_query()
                .map_or(0, |p| p.as_str().len())
                > MAX_URI_BYTES =>
            {
                ApiError::UriTooLong.into_response()
            }
            Err(e) => e.into_response(),
            Ok(Some(c)) if !c.scopes.allows(needed_scope(request.method())) => {
                ApiError::Forbidden.into_response()
            }
            Ok(caller) => {
                if let Some(c) = caller {
                    tracing::Span::current().record("team", tracing::field::display(&c.team));
                    request.extensions_mut().insert(c);
                }
                next.run(request).await
            }
        }
    };
    add_rate_headers(response.headers_mut(), decision);
    response
}

async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Caller>, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|k| PlainKey::parse(k.trim()))
        .ok_or(ApiError::Unauthorized)?;
    let key = state
        .keys
        .find_by_hash(&presented.hash())
        .await?
        .filter(|k| k.is_usable_at(now))
        .ok_or(ApiError::Unauthorized)?;
    // Kept to the minute: at most one write per key per minute.
    let now = whole_seconds(now);
    if key
        .last_used_at
        .is_none_or(|at| now - at >= chrono::Duration::minutes(1))
        && let Err(e) = state.keys.touch(&key.hash, now).await
    {
        warn!(key = key.prefix.as_str(), error = %e, "could not record the key's last use");
    }
    Ok(Some(Caller {
        team: key.team,
        scopes: key.scopes,
    }))
}

fn needed_scope(method: &Method) -> Scope {
    if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else {
        Scope::Write
    }
}

fn client_addr(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn add_rate_headers(headers: &mut HeaderMap, d: RateDecision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(d.reset_after));
}
