//! In-process adapters for a single-process deployment.

mod rate_limiter;

pub use rate_limiter::InMemoryRateLimiter;
