//! Adapters, named by technology, beside the ports they implement.

pub mod memory;
#[cfg(feature = "sqlite")]
pub mod sqlite;
