//! The MCP tools, read from the REST API's own OpenAPI document (`docs/openapi.json`, which
//! the API tests prove is the API as served): one tool per operation, named after its
//! `operationId`, its input schema made of the operation's path, query and header
//! parameters and its request body's fields, its output schema the success response's. So
//! a field, a limit or a message documented for REST is the same for MCP, with nothing
//! written twice.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use axum::http::Method;
use serde_json::{Map, Value, json};

/// The document the tools are read from (compiled in).
const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

/// The operations served as tools. The signing secret's two are not: a secret has no
/// business in a model's context.
const OPERATIONS: [&str; 14] = [
    "listJobs",
    "getJob",
    "createJob",
    "updateJob",
    "deleteJob",
    "triggerJob",
    "pauseJob",
    "resumeJob",
    "backfillJob",
    "listExecutions",
    "getExecution",
    "listUpcomingRuns",
    "previewSchedule",
    "listAudit",
];

/// Where an argument goes in the REST request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Path,
    /// A query parameter; `repeated` for an array (`tag=a&tag=b`).
    Query {
        repeated: bool,
    },
    Header,
}

/// A tool argument that is a REST parameter.
#[derive(Clone, Debug)]
pub struct Param {
    /// The argument's name (a header's in snake case: `idempotency_key`).
    pub argument: String,
    /// The REST name: the path template's `{name}`, the query key, the header name.
    pub rest_name: String,
    pub place: Place,
}

/// One tool: what an agent sees, and the REST operation it is.
#[derive(Clone, Debug)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub method: Method,
    /// The path as served, with `{name}` for path parameters (`/api/v1/cron/jobs/{id}`).
    pub path: String,
    pub params: Vec<Param>,
    /// Whether the operation takes a JSON body: the arguments that are not parameters.
    pub has_body: bool,
    pub input_schema: Map<String, Value>,
    pub output_schema: Option<Map<String, Value>>,
}

impl ToolSpec {
    /// A read (`GET`, or the preview: a read sent as a POST): `cron:read` is enough.
    pub fn reads_only(&self) -> bool {
        self.method == Method::GET || self.path.ends_with("/schedules/preview")
    }
}

/// Every tool, built once from the document.
pub static TOOLS: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| {
    let doc: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
    let doc = Doc(&doc);
    OPERATIONS.iter().map(|id| doc.tool(id)).collect()
});

/// The tool called `name`.
pub fn find(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name)
}

struct Doc<'a>(&'a Value);

impl Doc<'_> {
    fn tool(&self, operation_id: &str) -> ToolSpec {
        let (path, method, op) = self.operation(operation_id);
        // The operation's own parameters, then its path item's (`{id}`).
        let shared = &self.0["paths"][path]["parameters"];
        let params: Vec<(Param, Value)> = [&op["parameters"], shared]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| self.param(p))
            .collect();
        let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
        let has_body = !body.is_null();
        let input_schema = self.input_schema(&params, &body, operation_id);
        let output_schema = op["responses"]
            .as_object()
            .and_then(|r| r.iter().find(|(status, _)| status.starts_with('2')))
            .map(|(_, r)| &self.resolve(r)["content"]["application/json"]["schema"])
            .filter(|s| !s.is_null())
            .and_then(|s| self.inline(s).as_object().cloned());
        ToolSpec {
            name: snake_case(operation_id),
            description: describe(op, has_body),
            method,
            path: format!("{}{path}", self.server_of(path)),
            params: params.into_iter().map(|(p, _)| p).collect(),
            has_body,
            input_schema,
            output_schema,
        }
    }

    fn operation(&self, operation_id: &str) -> (&str, Method, &Value) {
        let paths = self.0["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let ops = item.as_object().into_iter().flatten();
                ops.map(move |(m, op)| (path.as_str(), m, op))
            })
            .find(|(_, _, op)| op["operationId"] == operation_id)
            .map(|(path, m, op)| {
                let method = m.to_ascii_uppercase().parse().expect("an HTTP method");
                (path, method, op)
            })
            .unwrap_or_else(|| panic!("docs/openapi.json has no operation {operation_id}"))
    }

    fn server_of(&self, path: &str) -> &str {
        let own = &self.0["paths"][path]["servers"][0]["url"];
        own.as_str()
            .or_else(|| self.0["servers"][0]["url"].as_str())
            .expect("a server URL")
    }

    fn param(&self, p: &Value) -> (Param, Value) {
        let p = self.resolve(p);
        let rest_name = p["name"].as_str().expect("a parameter name").to_owned();
        let place = match p["in"].as_str() {
            Some("path") => Place::Path,
            Some("query") => Place::Query {
                repeated: p["schema"]["type"] == "array",
            },
            Some("header") => Place::Header,
            other => panic!("parameter {rest_name} in {other:?}"),
        };
        let mut schema = self.inline(&p["schema"]);
        if let (Some(d), Some(obj)) = (p["description"].as_str(), schema.as_object_mut()) {
            obj.entry("description").or_insert(json!(d));
        }
        let argument = rest_name.to_ascii_lowercase().replace('-', "_");
        let required = p["required"] == true;
        let param = Param {
            argument,
            rest_name,
            place,
        };
        (param, json!({"schema": schema, "required": required}))
    }

    /// The parameters' schemas beside the body's properties, in one object schema.
    fn input_schema(
        &self,
        params: &[(Param, Value)],
        body: &Value,
        operation_id: &str,
    ) -> Map<String, Value> {
        let body = self.inline(body);
        let mut properties = body["properties"].as_object().cloned().unwrap_or_default();
        let mut required: BTreeSet<String> = body["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect();
        for (param, about) in params {
            let clash = properties.insert(param.argument.clone(), about["schema"].clone());
            assert!(clash.is_none(), "{operation_id}: {} twice", param.argument);
            if about["required"] == true {
                required.insert(param.argument.clone());
            }
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        if let Some(d) = body["description"].as_str() {
            schema.insert("description".into(), json!(d));
        }
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("required".into(), json!(required));
        schema.insert("additionalProperties".into(), json!(false));
        schema
    }

    /// Follows a local `$ref`.
    fn resolve<'v>(&'v self, mut v: &'v Value) -> &'v Value {
        while let Some(r) = v["$ref"].as_str() {
            let pointer = r.strip_prefix('#').expect("only local $refs");
            v = self
                .0
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{r} resolves"));
        }
        v
    }

    /// `v` with every `$ref` replaced by what it names (the document has no cycles), so
    /// that the schema stands alone. Keywords beside a `$ref` are kept over the target's.
    fn inline(&self, v: &Value) -> Value {
        match v {
            Value::Object(obj) => {
                let mut out = match obj.get("$ref") {
                    Some(_) => self
                        .inline(self.resolve(v))
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    None => Map::new(),
                };
                for (k, x) in obj.iter().filter(|(k, _)| *k != "$ref") {
                    out.insert(k.clone(), self.inline(x));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(|x| self.inline(x)).collect()),
            other => other.clone(),
        }
    }
}

/// The operation's summary and description, and where its body's fields go.
fn describe(op: &Value, has_body: bool) -> String {
    let mut text = format!("{}.", op["summary"].as_str().unwrap_or_default());
    if let Some(detail) = op["description"].as_str() {
        text.push(' ');
        text.push_str(detail);
    }
    if has_body {
        text.push_str(" The request body's fields are arguments beside the parameters.");
    }
    text
}

/// `listUpcomingRuns` → `list_upcoming_runs`.
fn snake_case(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 4);
    for c in id.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_read_from_the_document_with_a_standalone_schema() {
        let names: Vec<&str> = TOOLS.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), OPERATIONS.len());
        assert!(names.contains(&"list_upcoming_runs") && names.contains(&"create_job"));
        for tool in TOOLS.iter() {
            let text = serde_json::to_string(&tool.input_schema).unwrap();
            assert!(!text.contains("$ref"), "{} keeps a $ref", tool.name);
            assert!(tool.path.starts_with("/api/v1/cron/"), "{}", tool.path);
        }
    }

    #[test]
    fn a_tools_arguments_are_its_parameters_and_its_body_fields() {
        let update = find("update_job").unwrap();
        let props = update.input_schema["properties"].as_object().unwrap();
        for field in ["id", "idempotency_key", "name", "schedule", "overlap"] {
            assert!(props.contains_key(field), "update_job lacks {field}");
        }
        assert_eq!(update.input_schema["required"], json!(["id"]));
        assert_eq!(update.method, Method::PATCH);
        assert_eq!(update.path, "/api/v1/cron/jobs/{id}");
        let create = find("create_job").unwrap();
        let required = &create.input_schema["required"];
        assert_eq!(
            *required,
            json!(["name", "schedule", "schedule_type", "url"])
        );
        let list = find("list_jobs").unwrap();
        let tag = list.params.iter().find(|p| p.argument == "tag").unwrap();
        assert_eq!(tag.place, Place::Query { repeated: true });
        assert!(!list.has_body && list.reads_only());
        assert!(find("preview_schedule").unwrap().reads_only());
        assert!(!find("trigger_job").unwrap().reads_only());
        assert!(find("get_signing_secret").is_none());
    }
}
