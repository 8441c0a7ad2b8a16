//! Every request passes here: authentication, scope, per-caller rate limit, and the
//! `x-ratelimit-*` headers on every response.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};
use crate::domain::{PlainKey, Scope, Scopes, TeamId};
use crate::ports::RateDecision;

/// The authenticated caller, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct Caller {
    pub team: TeamId,
    pub scopes: Scopes,
}

pub async fn gate(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
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
            Err(e) => e.into_response(),
            Ok(Some(c)) if !c.scopes.allows(needed_scope(request.method())) => {
                ApiError::Forbidden.into_response()
            }
            Ok(caller) => {
                if let Some(c) = caller {
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
