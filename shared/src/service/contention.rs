//! Read-modify-write under optimistic concurrency, with one policy for every loop that
//! does it (a job's PATCH, pause and resume; a team's secret rotation; a hosted schedule
//! tick): up to `ATTEMPTS` tries, a short random pause between them, so that many
//! concurrent changes to one item serialise instead of colliding again.

use std::time::Duration;

/// Tries before giving up.
pub const ATTEMPTS: u32 = 64;

/// What one try came to.
pub enum Attempt<T> {
    Done(T),
    /// Someone else changed the item since it was read: read it again and retry.
    Conflict,
}

/// Runs `attempt` until it is done, or returns `Ok(None)` when every try conflicted.
/// (`attempt` returns a future that owns what it uses, e.g. `|| async move { .. }` over
/// references, so that the whole loop is `Send` wherever its parts are.)
pub async fn until_done<T, E, F, Fut>(mut attempt: F) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>, E>>,
{
    for n in 0..ATTEMPTS {
        if n > 0 {
            tokio::time::sleep(pause(n)).await;
        }
        if let Attempt::Done(value) = attempt().await? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Up to 1, 2, 4, ... 32 ms, at random.
fn pause(attempt: u32) -> Duration {
    let mut byte = [0u8; 2];
    let _ = getrandom::fill(&mut byte);
    let ceiling_us = 1_000u64 << attempt.min(5);
    Duration::from_micros(u64::from(u16::from_le_bytes(byte)) % ceiling_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_conflicting_try_is_retried_until_it_is_done() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        let done = until_done(|| {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                Ok::<_, ()>(if n < 3 {
                    Attempt::Conflict
                } else {
                    Attempt::Done(n)
                })
            }
        })
        .await;
        assert_eq!(done, Ok(Some(3)));
    }

    #[tokio::test]
    async fn endless_conflicts_give_up_after_the_last_attempt() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        let done = until_done(|| {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<Attempt<()>, ()>(Attempt::Conflict) }
        })
        .await;
        assert_eq!(done, Ok(None));
        assert_eq!(tries.into_inner(), ATTEMPTS);
    }
}
