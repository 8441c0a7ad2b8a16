//! A tool call made into the REST request it stands for (`api::inproc`: the gate checks its
//! scope and audits it, the handlers validate it, as for any request), and the REST answer
//! made into the tool's result: the JSON body as structured content, or the API's error
//! body as an error result.

use axum::http::{HeaderName, HeaderValue};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value};

use super::catalogue::{Place, ToolSpec};
use crate::api::inproc::{self, Answer, Ask, Origin};
use crate::api::{ApiError, MAX_BODY_BYTES};
use crate::domain::FieldErrors;

/// The body limit a tool call's MCP request is held to: a REST body's, with room for the
/// JSON-RPC envelope.
pub const MAX_MCP_BODY_BYTES: usize = MAX_BODY_BYTES + 64 * 1024;

/// Calls `tool` with `arguments` for `origin`, through `rest`.
pub async fn call(
    rest: &axum::Router,
    tool: &ToolSpec,
    arguments: Map<String, Value>,
    origin: Origin,
) -> CallToolResult {
    let answer = match rest_ask(tool, arguments) {
        Ok(ask) => inproc::call(rest, &origin, ask).await,
        Err(refused) => inproc::fail(refused),
    };
    into_result(answer)
}

/// The REST request: parameters into the path, query and headers; the other arguments
/// into the JSON body (or, for an operation without one, refused as unknown fields).
fn rest_ask(tool: &ToolSpec, mut arguments: Map<String, Value>) -> Result<Ask, ApiError> {
    let mut path = tool.path.clone();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    let mut ask = Ask::new(tool.method.clone(), String::new());
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
            Place::Header => match header(&param.rest_name, &texts[0]) {
                Some(h) => ask.headers.push(h),
                None => errors.add(&param.argument, "is not a valid header value"),
            },
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
    ask.uri = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    if tool.has_body {
        ask = ask.json(Value::Object(arguments));
    }
    Ok(ask)
}

fn header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    Some((name.parse().ok()?, value.parse().ok()?))
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

/// A 2xx's JSON body as the result's structured content; anything else an error result
/// whose text is the API's error body (the same message a REST client gets).
fn into_result(answer: Answer) -> CallToolResult {
    match answer.body {
        body @ Value::Object(_) if answer.status.is_success() => CallToolResult::structured(body),
        body => CallToolResult::error(vec![ContentBlock::text(body.to_string())]),
    }
}
