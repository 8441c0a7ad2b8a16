use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::{RateDecision, RateLimiter, StoreResult};

/// A fixed-window counter per bucket, in memory: right for one process (the embedded
/// server). The hosted deployment shares its counters in the store instead.
pub struct InMemoryRateLimiter {
    limit: u32,
    window_secs: i64,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl InMemoryRateLimiter {
    pub fn new(limit: u32, window_secs: u32) -> Self {
        Self {
            limit,
            window_secs: i64::from(window_secs.max(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl RateLimiter for InMemoryRateLimiter {
    async fn hit(&self, bucket: &str, now: DateTime<Utc>) -> StoreResult<RateDecision> {
        let now = now.timestamp();
        let window = now - now.rem_euclid(self.window_secs);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (w, _)| *w == window);
        }
        let entry = windows.entry(bucket.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        let allowed = entry.1 < self.limit;
        if allowed {
            entry.1 += 1;
        }
        Ok(RateDecision {
            allowed,
            limit: self.limit,
            remaining: self.limit - entry.1,
            reset_after: (window + self.window_secs - now) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_bucket_is_refused_after_its_limit_until_the_window_turns() {
        let l = InMemoryRateLimiter::new(2, 60);
        let t = Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 10).unwrap();
        let a = l.hit("team:a", t).await.unwrap();
        assert_eq!((a.allowed, a.remaining, a.reset_after), (true, 1, 50));
        assert!(l.hit("team:a", t).await.unwrap().allowed);
        let refused = l.hit("team:a", t).await.unwrap();
        assert_eq!((refused.allowed, refused.remaining), (false, 0));
        assert!(
            l.hit("team:b", t).await.unwrap().allowed,
            "buckets are separate"
        );
        let next = t + chrono::Duration::seconds(50);
        assert!(l.hit("team:a", next).await.unwrap().allowed);
    }
}
