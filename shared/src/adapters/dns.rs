//! The system resolver (`getaddrinfo`, as every other program on the machine resolves).

use std::net::SocketAddr;

use async_trait::async_trait;

use crate::ports::Resolver;

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        // The port is set by the caller; 0 here.
        Ok(tokio::net::lookup_host((host, 0)).await?.collect())
    }
}
