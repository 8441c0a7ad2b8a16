//! Krafter Cron core: domain types, ports (traits), the API router, the executor engine,
//! and the adapters. Binaries in `functions/` only wire these together.

pub mod adapters;
pub mod api;
#[cfg(feature = "executor")]
pub mod assembly;
pub mod crontab;
pub mod domain;
#[cfg(all(feature = "sqlite", feature = "executor"))]
pub mod embedded;
#[cfg(feature = "executor")]
pub mod executor;
#[cfg(feature = "aws")]
pub mod hosted;
#[cfg(feature = "logs")]
pub mod logs;
pub mod metrics;
pub mod ports;
pub mod schedule;
pub mod service;
pub mod settings;
pub mod targets;
