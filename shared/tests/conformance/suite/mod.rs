//! The conformance suite: one module per store port, each test a `pub async fn(Backend)`
//! that any adapter must pass. `main.rs` expands every test once per backend.

pub mod audit;
pub mod executions;
pub mod idempotency;
pub mod jobs;
pub mod keys;
pub mod overlap;
pub mod queue;
pub mod teams;
