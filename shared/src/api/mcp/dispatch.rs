//! A tool call made into the REST request it stands for, sent through the REST routes
//! in-process (the gate checks its scope and records it in the audit log, the handlers
//! validate it, as for any request), and the REST response made into the tool's result:
//! the JSON body as structured content, or the API's error body as an error result.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, header};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use tower_service::Service;

use super::catalogue::{Place, ToolSpec};
use crate::api::gate::{Caller, Dispatched};
use crate::api::{ApiError, MAX_BODY_BYTES};
use crate::domain::FieldErrors;

/// The largest REST response read back (a page of executions with their bodies fits).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// What a call carries over from its MCP request: who asked, and from where.
pub struct Origin {
    pub caller: Caller,
    pub peer: Option<ConnectInfo<SocketAddr>>,
}

/// Calls `tool` with `arguments` for `origin`, through `rest`.
pub async fn call(
    rest: &Router,
    tool: &ToolSpec,
    arguments: Map<String, Value>,
    origin: Origin,
) -> CallToolResult {
    let request = match rest_request(tool, arguments, origin) {
        Ok(r) => r,
        Err(refused) => return error_result(&refused),
    };
    let mut rest = rest.clone();
    let response = match rest.call(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    into_result(response).await
}

/// The REST request: parameters into the path, query and headers; the other arguments
/// into the JSON body (or, for an operation without one, refused as unknown fields).
fn rest_request(
    tool: &ToolSpec,
    mut arguments: Map<String, Value>,
    origin: Origin,
) -> Result<Request<Body>, ApiError> {
    let mut path = tool.path.clone();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut headers = Vec::new();
    let mut errors = FieldErrors::default();
    for param in &tool.params {
        let Some(value) = arguments.remove(&param.argument) else {
            continue;
        };
        let Some(texts) = texts(&value, param.place) else {
            errors.add(&param.argument, "is not a valid value");
            continue;
        };
        match param.place {
            Place::Path => {
                let segment: String =
                    url::form_urlencoded::byte_serialize(texts[0].as_bytes()).collect();
                path = path.replace(&format!("{{{}}}", param.rest_name), &segment);
            }
            Place::Query { .. } => {
                for t in &texts {
                    query.append_pair(&param.rest_name, t);
                }
            }
            Place::Header => headers.push((param.rest_name.clone(), texts[0].clone())),
        }
    }
    if !tool.has_body {
        for unknown in arguments.keys() {
            errors.add(unknown, "is not a known field");
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let query = query.finish();
    let uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut builder = Request::builder().method(tool.method.clone()).uri(uri);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let body = if tool.has_body {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
        Body::from(Value::Object(arguments).to_string())
    } else {
        Body::empty()
    };
    let mut request = builder
        .body(body)
        .map_err(|_| ApiError::Validation(invalid_parameter()))?;
    request.extensions_mut().insert(Dispatched(origin.caller));
    if let Some(peer) = origin.peer {
        request.extensions_mut().insert(peer);
    }
    Ok(request)
}

/// A parameter's value as the text(s) it is sent as: a string as it is, a number or a
/// boolean as JSON writes it, an array (for a repeated query parameter) item by item.
fn texts(value: &Value, place: Place) -> Option<Vec<String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match (value, place) {
        (Value::Array(items), Place::Query { repeated: true }) => {
            items.iter().map(scalar).collect()
        }
        (v, _) => scalar(v).map(|t| vec![t]),
    }
}

fn invalid_parameter() -> FieldErrors {
    FieldErrors::single(
        "arguments",
        "contain a value that cannot be sent".to_owned(),
    )
}

/// A 2xx's JSON body as the result's structured content; anything else an error result
/// whose text is the API's error body (the same message a REST client gets).
async fn into_result(response: Response<Body>) -> CallToolResult {
    let status = response.status();
    let body = match axum::body::to_bytes(response.into_body(), MAX_RESPONSE_BYTES).await {
        Ok(b) => b,
        Err(e) => return error_result(&ApiError::Internal(e.into())),
    };
    if !status.is_success() {
        return CallToolResult::error(vec![ContentBlock::text(String::from_utf8_lossy(&body))]);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(value @ Value::Object(_)) => CallToolResult::structured(value),
        _ => error_result(&ApiError::Internal(
            "a REST answer that is not a JSON object".into(),
        )),
    }
}

/// An error result with the API's error body (an internal error's cause is logged).
fn error_result(error: &ApiError) -> CallToolResult {
    error.log_cause();
    CallToolResult::error(vec![ContentBlock::text(error.body().to_string())])
}

/// The body limit a tool call's MCP request is held to: a REST body's, with room for the
/// JSON-RPC envelope.
pub const MAX_MCP_BODY_BYTES: usize = MAX_BODY_BYTES + 64 * 1024;
