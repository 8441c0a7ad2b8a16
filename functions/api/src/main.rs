//! The hosted API function: API Gateway (HTTP API, payload 2.0) → `lambda_http` → the same
//! axum `Router` the embedded server serves, on DynamoDB, EventBridge Scheduler and SQS.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use krafter_shared::hosted::{AwsClients, Hosted, process_env};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    krafter_shared::hosted::init_lambda_tracing();
    let env = process_env();
    let (resources, settings) = (env.resources()?, env.settings()?);
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let hosted = Hosted::new(AwsClients::new(&config), resources, settings);
    let app = hosted
        .router()
        .layer(middleware::from_fn(client_address))
        .layer(middleware::from_fn(flush_metrics_after));
    lambda_http::run(app).await
}

/// Writes the request's metrics before the function is frozen.
async fn flush_metrics_after(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    krafter_shared::hosted::flush_metrics();
    response
}

/// Gives the router the caller's address (for the rate limit of unauthenticated requests),
/// which API Gateway passes in the request context instead of a socket.
async fn client_address(mut request: Request, next: Next) -> Response {
    let ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok()),
        _ => None,
    };
    if let Some(ip) = ip {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 0)));
    }
    next.run(request).await
}
