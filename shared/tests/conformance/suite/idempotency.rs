//! `IdempotencyStore` conformance: a key is claimed once per team, its response kept and
//! read back, a released claim is free again, an expired one too.

use std::sync::Arc;

use chrono::Duration;
use krafter_shared::domain::{
    IdempotencyKey, IdempotencyRecord, RequestFingerprint, StoredResponse, TeamId,
};
use krafter_shared::ports::IdempotencyClaim;

use crate::backend::Backend;
use crate::fixtures::*;

fn claim(team: &TeamId, key: &str, body: &[u8], minutes: i64) -> IdempotencyRecord {
    IdempotencyRecord::claim(
        team.clone(),
        IdempotencyKey::parse(key).unwrap(),
        RequestFingerprint::of("POST", "/api/v1/cron/jobs", body),
        mins(minutes),
    )
}

fn created() -> StoredResponse {
    StoredResponse {
        status: 201,
        location: Some("/api/v1/cron/jobs/x".into()),
        body: "{\"data\":{}}".into(),
    }
}

conformance_tests! {
    pub async fn a_key_is_claimed_once_and_its_response_read_back(b: Backend) {
        let first = claim(&team_a(), "k-1", b"{}", 0);
        assert_eq!(b.idempotency.claim(&first).await.unwrap(), IdempotencyClaim::Claimed);
        match b.idempotency.claim(&first).await.unwrap() {
            IdempotencyClaim::Existing(e) => {
                assert_eq!(e.fingerprint, first.fingerprint);
                assert_eq!(e.response, None, "still in progress");
            }
            other => panic!("{other:?}"),
        }
        b.idempotency.complete(&first.team, &first.key, &created()).await.unwrap();
        let again = claim(&team_a(), "k-1", b"{}", 5);
        match b.idempotency.claim(&again).await.unwrap() {
            IdempotencyClaim::Existing(e) => {
                assert_eq!(e.response, Some(created()));
                assert_eq!(e.created_at, first.created_at, "the first claim's record");
            }
            other => panic!("{other:?}"),
        }
    }

    pub async fn keys_are_per_team(b: Backend) {
        let a = claim(&team_a(), "shared", b"{}", 0);
        let other = claim(&team_b(), "shared", b"{}", 0);
        assert_eq!(b.idempotency.claim(&a).await.unwrap(), IdempotencyClaim::Claimed);
        assert_eq!(b.idempotency.claim(&other).await.unwrap(), IdempotencyClaim::Claimed);
    }

    pub async fn a_released_claim_is_free_but_a_completed_one_is_kept(b: Backend) {
        let first = claim(&team_a(), "k-2", b"{}", 0);
        b.idempotency.claim(&first).await.unwrap();
        b.idempotency.release(&first.team, &first.key).await.unwrap();
        assert_eq!(b.idempotency.claim(&first).await.unwrap(), IdempotencyClaim::Claimed);
        b.idempotency.complete(&first.team, &first.key, &created()).await.unwrap();
        b.idempotency.release(&first.team, &first.key).await.unwrap();
        assert!(matches!(
            b.idempotency.claim(&first).await.unwrap(),
            IdempotencyClaim::Existing(_)
        ));
    }

    pub async fn an_expired_key_can_be_claimed_again(b: Backend) {
        let first = claim(&team_a(), "k-3", b"{}", 0);
        b.idempotency.claim(&first).await.unwrap();
        b.idempotency.complete(&first.team, &first.key, &created()).await.unwrap();
        let next_day = IdempotencyRecord::claim(
            team_a(),
            first.key.clone(),
            RequestFingerprint::of("POST", "/other", b""),
            first.expires_at + Duration::seconds(1),
        );
        assert_eq!(b.idempotency.claim(&next_day).await.unwrap(), IdempotencyClaim::Claimed);
    }

    pub async fn of_concurrent_claims_exactly_one_wins(b: Backend) {
        let store = b.idempotency.clone();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.claim(&claim(&team_a(), "race", b"{}", 0)).await.unwrap() })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            if t.await.unwrap() == IdempotencyClaim::Claimed {
                won += 1;
            }
        }
        assert_eq!(won, 1);
    }

    pub async fn pruning_forgets_expired_keys_only(b: Backend) {
        let old = claim(&team_a(), "old", b"{}", 0);
        let new = claim(&team_a(), "new", b"{}", 60);
        b.idempotency.claim(&old).await.unwrap();
        b.idempotency.claim(&new).await.unwrap();
        let pruned = b.idempotency.prune(old.expires_at + Duration::seconds(1)).await.unwrap();
        // DynamoDB's TTL does its pruning: the store reports none.
        assert!(pruned <= 1);
        assert!(matches!(
            b.idempotency.claim(&new).await.unwrap(),
            IdempotencyClaim::Existing(_)
        ));
    }
}
