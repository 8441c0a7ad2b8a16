//! Every request passes here: authentication, scope, per-caller rate limit, and the
//! `x-ratelimit-*` headers on every response.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{Instrument, debug, info, info_span, warn};

use super::audit::Asked;
use super::{ApiError, ApiState, MAX_URI_BYTES};
use crate::domain::{KeyPrefix, PlainKey, Scope, Scopes, TeamId, time::whole_seconds};
use crate::ports::RateDecision;

/// The authenticated caller, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct Caller {
    pub team: TeamId,
    pub scopes: Scopes,
    /// The key's prefix: what the audit log names it by.
    pub key_prefix: KeyPrefix,
}

/// A request the MCP endpoint hands on to the REST routes, for the caller the gate already
/// authenticated and counted against the rate limit when the MCP request came in. Set only
/// in-process (an extension, never a header): no client can send it.
#[derive(Clone, Debug)]
pub struct Dispatched(pub Caller);

/// The API paths that need a key: the REST API and its MCP endpoint.
fn is_protected(path: &str) -> bool {
    path.starts_with("/api/v1/cron") || path == super::MCP_PATH
}

/// Every request runs in a span with a request id (returned as `x-request-id`), so each
/// log line it causes can be found from what the client saw.
pub async fn gate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = info_span!("request", %request_id, %method, %path, team = tracing::field::Empty);
    let started = std::time::Instant::now();
    let mut response = handle(state, request, next, &request_id.to_string())
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    crate::metrics::api_request(&path, status, started.elapsed());
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

async fn handle(state: ApiState, mut request: Request, next: Next, request_id: &str) -> Response {
    let now = state.clock.now();
    let dispatched = request.extensions().get::<Dispatched>().cloned();
    let caller = match &dispatched {
        Some(Dispatched(c)) => Ok(Some(c.clone())),
        None if is_protected(request.uri().path()) => {
            authenticate(&state, request.headers(), now).await
        }
        None => Ok(None),
    };
    // A change asked by a known caller is audited however it ends (refusals included).
    let asked = match &caller {
        Ok(Some(c)) => Asked::of(c, request.method().as_str(), request.uri().path(), || {
            client_addr(&request)
        }),
        _ => None,
    };
    let counted = dispatched.is_none();
    let decision = match dispatched {
        // Counted once, as the MCP request that carries it.
        Some(_) => RateDecision::UNCOUNTED,
        None => match state.limiter.hit(&bucket(&caller, &request), now).await {
            Ok(d) => d,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let mut response = match admit(&request, decision, caller) {
        Err(refused) => refused.into_response(),
        Ok(caller) => {
            if let Some(c) = caller {
                tracing::Span::current().record("team", tracing::field::display(&c.team));
                request.extensions_mut().insert(c);
            }
            next.run(request).await
        }
    };
    if counted {
        add_rate_headers(response.headers_mut(), decision);
    }
    if let Some(asked) = asked {
        let answered = super::audit::Answered::of(&response);
        super::audit::record(&state, asked, answered, request_id, now).await;
    }
    response
}

/// Whose requests a request counts with: its team's, or before authentication its address's.
fn bucket(caller: &Result<Option<Caller>, ApiError>, request: &Request) -> String {
    match caller {
        Ok(Some(c)) => format!("team:{}", c.team),
        _ => format!("addr:{}", client_addr(request)),
    }
}

/// Whether the request goes on to its handler: within the rate limit, a URI that is not too
/// long (checked after the rate limit, so that a flood of long URIs is limited too), an
/// authenticated caller whose scopes allow the method.
fn admit(
    request: &Request,
    decision: RateDecision,
    caller: Result<Option<Caller>, ApiError>,
) -> Result<Option<Caller>, ApiError> {
    if !decision.allowed {
        return Err(ApiError::RateLimited {
            retry_after: decision.reset_after.max(1),
        });
    }
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong);
    }
    let caller = caller?;
    if let Some(c) = &caller
        && !c.scopes.allows(needed_scope(request))
    {
        return Err(ApiError::Forbidden);
    }
    Ok(caller)
}

/// The key of an `Authorization: Bearer <key>` header. The scheme name is case-insensitive
/// (RFC 9110 §11.1): `bearer` and `BEARER` work too.
fn bearer_key(headers: &HeaderMap) -> Option<PlainKey> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    PlainKey::parse(key.trim())
}

async fn authenticate(
    state: &ApiState,
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Caller>, ApiError> {
    let presented = bearer_key(headers).ok_or(ApiError::Unauthorized)?;
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
        key_prefix: key.prefix,
    }))
}

/// Reads need `cron:read`; a schedule preview is a read sent as a POST (it has a body).
fn needed_scope(request: &Request) -> Scope {
    let method = request.method();
    let path = request.uri().path();
    // The signing secret is shown to write keys only.
    if path == "/api/v1/cron/team/signing-secret" {
        return Scope::Write;
    }
    // Any key may speak MCP: each tool call is checked again as the REST request it makes.
    if path == super::MCP_PATH {
        return Scope::Read;
    }
    if method == Method::GET || method == Method::HEAD || path == "/api/v1/cron/schedules/preview" {
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
