//! The API over MCP (Model Context Protocol): `POST /api/v1/mcp`, Streamable HTTP, served
//! statelessly with JSON responses (no session is kept, so any API instance, embedded or a
//! Lambda, answers any request). The gate authenticates and rate-limits the MCP request like
//! any other (any key may connect); each tool is a REST operation (`catalogue`) and is
//! called as that REST request (`dispatch`), so scopes, team isolation, validation, error
//! messages and the audit log are the REST API's own.

mod catalogue;
mod dispatch;

use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::gate::Caller;
use super::inproc::Origin;

/// What an agent is told about the server when it connects.
const INSTRUCTIONS: &str = "Krafter Cron calls webhooks on a schedule. Each tool is one \
    operation of its REST API (docs/API.md), with the same fields, limits and error messages. \
    Reads need a cron:read key; changes need cron:write. Ids are UUIDs returned by the tools.";

/// The MCP endpoint as a service for the router: `rest` is the REST API it calls into.
pub fn service(rest: Router) -> StreamableHttpService<Krafter, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(dispatch::MAX_MCP_BODY_BYTES)
        // Every request carries an API key (a DNS-rebinding page has none), and the hosted API
        // answers on whatever host name API Gateway gives it.
        .disable_allowed_hosts();
    let rest = Arc::new(rest);
    StreamableHttpService::new(
        move || Ok(Krafter { rest: rest.clone() }),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// The MCP server: its tools call into the REST API.
#[derive(Clone)]
pub struct Krafter {
    rest: Arc<Router>,
}

impl rmcp::ServerHandler for Krafter {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(
                "krafter-cron",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = catalogue::TOOLS.iter().map(tool).collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(spec) = catalogue::find(&request.name) else {
            let message = format!("no tool named {}", request.name);
            return Err(ErrorData::invalid_params(message, None));
        };
        let parts = context.extensions.get::<http::request::Parts>();
        let caller = parts.and_then(|p| p.extensions.get::<Caller>()).cloned();
        let Some(caller) = caller else {
            // The gate admits no MCP request without a key; this is not one of those.
            return Err(ErrorData::internal_error("the request has no caller", None));
        };
        let peer = parts.and_then(|p| p.extensions.get::<ConnectInfo<std::net::SocketAddr>>());
        let origin = Origin {
            caller,
            peer: peer.cloned(),
        };
        let arguments = request.arguments.unwrap_or_default();
        Ok(dispatch::call(&self.rest, spec, arguments, origin)
            .await
            .into())
    }
}

/// A tool as MCP lists it.
fn tool(spec: &catalogue::ToolSpec) -> Tool {
    let mut tool = Tool::new_with_raw(
        spec.name.clone(),
        Some(spec.description.clone().into()),
        Arc::new(spec.input_schema.clone()),
    );
    if let Some(output) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(output.clone()));
    }
    let scope = if spec.reads_only() {
        "cron:read"
    } else {
        "cron:write"
    };
    let annotations = ToolAnnotations::new()
        .read_only(spec.reads_only())
        .destructive(spec.method == http::Method::DELETE);
    tool.with_title(format!("{} ({scope})", spec.name))
        .with_annotations(annotations)
}
