//! Idempotent requests: a client sends `Idempotency-Key: <key>` with a mutating call, and a
//! retry with the same key by the same team within 24 hours gets the first response again
//! and changes nothing. The same key with a different request is refused.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use super::TeamId;

/// How long a key is remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

/// A client's idempotency key: 1 to 255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if !s.is_empty() && s.len() <= Self::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1 to 255 visible ASCII characters")
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies a request for its key: SHA-256 over its method, path and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    pub fn of(method: &str, path_and_query: &str, body: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update(b" ");
        h.update(path_and_query.as_bytes());
        h.update(b"\n");
        h.update(body);
        Self(hex::encode(h.finalize()))
    }
    pub fn from_hex(s: &str) -> Self {
        Self(s.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The response remembered for a key, replayed to every retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// `Location`, for a create.
    pub location: Option<String>,
    pub body: String,
}

/// A key's record: claimed by the request being handled (no response yet), or done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub team: TeamId,
    pub key: IdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub response: Option<StoredResponse>,
}

impl IdempotencyRecord {
    /// A new claim at `now`, remembered for the window.
    pub fn claim(
        team: TeamId,
        key: IdempotencyKey,
        fingerprint: RequestFingerprint,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            team,
            key,
            fingerprint,
            created_at: now,
            expires_at: now + IDEMPOTENCY_WINDOW,
            response: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_and_not_too_long() {
        assert!(IdempotencyKey::parse("3f0c-create-job-7").is_ok());
        for bad in ["", "with space", "é", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_fingerprint_changes_with_method_path_and_body() {
        let a = RequestFingerprint::of("POST", "/api/v1/cron/jobs", b"{}");
        assert_eq!(
            a,
            RequestFingerprint::of("POST", "/api/v1/cron/jobs", b"{}")
        );
        assert_ne!(
            a,
            RequestFingerprint::of("PATCH", "/api/v1/cron/jobs", b"{}")
        );
        assert_ne!(
            a,
            RequestFingerprint::of("POST", "/api/v1/cron/jobs/x", b"{}")
        );
        assert_ne!(
            a,
            RequestFingerprint::of("POST", "/api/v1/cron/jobs", b"{ }")
        );
    }
}
