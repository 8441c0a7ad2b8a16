//! When a failed attempt is tried again, and after how long.

use std::time::Duration;

use crate::domain::{AttemptOutcome, RetrySpec, RunStatus};

/// Which failed attempts are tried again, and when: after the job's backoff (`RetrySpec`:
/// by default the published linear one, `base`, `2 × base`, `3 × base`, ..., 15 s, 30 s,
/// 45 s), or a target's longer `Retry-After`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// The deployment's base (`KRAFTER_RETRY_BACKOFF_MS`), for jobs that set none.
    pub base: Duration,
    /// The longest wait honoured from a `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, or `None` when the run is over.
    pub fn next_delay(
        &self,
        outcome: &AttemptOutcome,
        attempt: u32,
        spec: &RetrySpec,
        max_retries: u32,
        retry_after: Option<u64>,
    ) -> Option<Duration> {
        if outcome.status == RunStatus::Success || attempt > max_retries {
            return None;
        }
        if let Some(code) = outcome.http_status
            && (400..500).contains(&code)
            && code != 408
            && code != 429
        {
            return None;
        }
        let backoff = spec.delay(attempt, self.base);
        let asked = retry_after
            .map(Duration::from_secs)
            .unwrap_or_default()
            .min(self.max_retry_after);
        Some(backoff.max(asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn outcome(status: RunStatus, http: Option<u16>) -> AttemptOutcome {
        AttemptOutcome {
            status,
            http_status: http,
            response_body: None,
            error: None,
            duration_ms: 1,
            finished_at: Utc::now(),
        }
    }
    const LINEAR: RetrySpec = RetrySpec {
        backoff: crate::domain::Backoff::Linear,
        base: None,
        max: None,
    };
    const P: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(15),
        max_retry_after: Duration::from_secs(3600),
    };

    #[test]
    fn backoff_is_linear_fifteen_thirty_forty_five() {
        let failed = outcome(RunStatus::Failed, Some(500));
        let waits: Vec<_> = (1..=4)
            .map(|a| P.next_delay(&failed, a, &LINEAR, 3, None))
            .collect();
        assert_eq!(
            waits,
            [
                Some(Duration::from_secs(15)),
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(45)),
                None
            ]
        );
    }

    #[test]
    fn client_errors_are_final_except_408_and_429() {
        for code in [400, 401, 403, 404, 410, 422] {
            assert_eq!(
                P.next_delay(&outcome(RunStatus::Failed, Some(code)), 1, &LINEAR, 3, None),
                None
            );
        }
        for code in [408, 429, 500, 502, 503] {
            assert!(
                P.next_delay(&outcome(RunStatus::Failed, Some(code)), 1, &LINEAR, 3, None)
                    .is_some()
            );
        }
        assert!(
            P.next_delay(&outcome(RunStatus::Failed, None), 1, &LINEAR, 3, None)
                .is_some()
        );
    }

    #[test]
    fn a_longer_retry_after_is_honoured_and_capped() {
        let busy = outcome(RunStatus::Failed, Some(503));
        assert_eq!(
            P.next_delay(&busy, 1, &LINEAR, 3, Some(120)),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            P.next_delay(&busy, 1, &LINEAR, 3, Some(5)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            P.next_delay(&busy, 1, &LINEAR, 3, Some(99_999)),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn success_and_zero_retries_end_the_run() {
        assert_eq!(
            P.next_delay(&outcome(RunStatus::Success, Some(200)), 1, &LINEAR, 3, None),
            None
        );
        assert_eq!(
            P.next_delay(&outcome(RunStatus::Failed, Some(500)), 1, &LINEAR, 0, None),
            None
        );
    }
}
