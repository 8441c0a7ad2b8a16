//! In-process adapters: for a single-process deployment, and per-instance caches in front
//! of a shared store.

mod key_cache;
mod rate_limiter;
mod team_cache;
mod ttl_cache;

pub use key_cache::CachedKeyStore;
pub use rate_limiter::InMemoryRateLimiter;
pub use team_cache::CachedTeamStore;
