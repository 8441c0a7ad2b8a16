//! A request made to the REST routes from inside the process, for a caller another front
//! door (MCP, the console) has already authenticated: it passes the gate (scope, audit,
//! request id) and the handlers like any request, marked `Dispatched` so it is neither
//! authenticated nor counted against the rate limit again.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;
use tower_service::Service;

use super::ApiError;
use super::gate::{Caller, Dispatched};

/// The largest REST answer read back (a page of executions with their bodies fits).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Who asks, and from where.
#[derive(Clone, Debug)]
pub struct Origin {
    pub caller: Caller,
    pub peer: Option<ConnectInfo<SocketAddr>>,
}

/// One REST request: method, path with its query, extra headers, an optional JSON body.
pub struct Ask {
    pub method: Method,
    pub uri: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Value>,
}

impl Ask {
    pub fn new(method: Method, uri: impl Into<String>) -> Self {
        Self {
            method,
            uri: uri.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// The REST answer: its status and its JSON body (`Null` when it had none).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

/// Sends `ask` through `rest` for `origin`. A request that cannot be built, or an answer
/// that cannot be read, is the API's internal error (its cause logged).
pub async fn call(rest: &Router, origin: &Origin, ask: Ask) -> Answer {
    match request(origin, ask) {
        Ok(request) => answer(rest, request).await,
        Err(e) => fail(ApiError::Internal(e.into())),
    }
}

fn request(origin: &Origin, ask: Ask) -> Result<Request<Body>, axum::http::Error> {
    let mut builder = Request::builder().method(ask.method).uri(ask.uri);
    for (name, value) in ask.headers {
        builder = builder.header(name, value);
    }
    let body = match ask.body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let mut request = builder.body(body)?;
    request
        .extensions_mut()
        .insert(Dispatched(origin.caller.clone()));
    if let Some(peer) = origin.peer {
        request.extensions_mut().insert(peer);
    }
    Ok(request)
}

async fn answer(rest: &Router, request: Request<Body>) -> Answer {
    let mut rest = rest.clone();
    let response = match rest.call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status();
    match axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await {
        Ok(b) if b.is_empty() => Answer {
            status,
            body: Value::Null,
        },
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(body) => Answer { status, body },
            Err(e) => fail(ApiError::Internal(e.into())),
        },
        Err(e) => fail(ApiError::Internal(e.into())),
    }
}

/// `error` as the answer it would have been (its cause logged, never shown).
pub fn fail(error: ApiError) -> Answer {
    error.log_cause();
    Answer {
        status: error.status(),
        body: error.body(),
    }
}
