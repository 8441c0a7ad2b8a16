//! `KeyStore` conformance.

use chrono::Duration;
use krafter_shared::domain::{PlainKey, Scope, Scopes};

use crate::backend::Backend;
use crate::fixtures::*;

conformance_tests! {
    pub async fn a_key_round_trips_by_its_hash(b: Backend) {
        let (plain, mut read_only) = key(&team_a(), "AAAA", 'a', t0());
        read_only.scopes = Scopes::new(vec![Scope::Read]);
        read_only.expires_at = Some(mins(60));
        let (plain_rw, mut both) = key(&team_b(), "BBBB", 'b', mins(1));
        both.scopes = Scopes::new(vec![Scope::Read, Scope::Write]);
        let (plain_old, mut revoked) = key(&team_a(), "CCCC", 'c', mins(2));
        revoked.revoked_at = Some(mins(3));
        for k in [&read_only, &both, &revoked] {
            b.keys.insert(k).await.unwrap();
        }

        assert_eq!(
            b.keys.find_by_hash(&plain.hash()).await.unwrap(),
            Some(read_only)
        );
        assert_eq!(
            b.keys.find_by_hash(&plain_rw.hash()).await.unwrap(),
            Some(both)
        );
        assert_eq!(
            b.keys.find_by_hash(&plain_old.hash()).await.unwrap(),
            Some(revoked)
        );
    }

    pub async fn an_unknown_hash_finds_nothing(b: Backend) {
        let (_, k) = key(&team_a(), "AAAA", 'a', t0());
        b.keys.insert(&k).await.unwrap();
        // Same prefix, different secret.
        let (stranger, _) = key(&team_a(), "AAAA", 'z', t0());
        assert_eq!(b.keys.find_by_hash(&stranger.hash()).await.unwrap(), None);
        assert_eq!(
            b.keys
                .find_by_hash(&PlainKey::generate().hash())
                .await
                .unwrap(),
            None
        );
    }

    pub async fn keys_are_listed_oldest_first_for_everyone_or_one_team(b: Backend) {
        let (_, a1) = key(&team_a(), "AAA1", 'a', mins(1));
        let (_, b2) = key(&team_b(), "BBB2", 'b', mins(2));
        let (_, a3) = key(&team_a(), "AAA3", 'c', mins(3));
        for k in [&a3, &a1, &b2] {
            b.keys.insert(k).await.unwrap();
        }
        assert_eq!(
            b.keys.list(None).await.unwrap(),
            vec![a1.clone(), b2.clone(), a3.clone()]
        );
        assert_eq!(b.keys.list(Some(&team_a())).await.unwrap(), vec![a1, a3]);
        assert_eq!(b.keys.list(Some(&team_b())).await.unwrap(), vec![b2]);
        let nobody = krafter_shared::domain::TeamId::parse("nobody").unwrap();
        assert!(b.keys.list(Some(&nobody)).await.unwrap().is_empty());
    }

    pub async fn revoking_a_key_by_its_prefix_returns_it_revoked(b: Backend) {
        let (plain, k) = key(&team_a(), "AAAA", 'a', t0());
        let (other_plain, other) = key(&team_a(), "BBBB", 'b', t0());
        b.keys.insert(&k).await.unwrap();
        b.keys.insert(&other).await.unwrap();
        assert!(k.is_usable_at(mins(10)));

        let revoked = b.keys.revoke(&plain.prefix(), mins(10)).await.unwrap();
        let expected = krafter_shared::domain::ApiKey {
            revoked_at: Some(mins(10)),
            ..k.clone()
        };
        assert_eq!(revoked, vec![expected.clone()]);
        let stored = b.keys.find_by_hash(&plain.hash()).await.unwrap().unwrap();
        assert_eq!(stored, expected);
        assert!(!stored.is_usable_at(mins(11)));
        let untouched = b
            .keys
            .find_by_hash(&other_plain.hash())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(untouched, other);
        assert!(untouched.is_usable_at(mins(11)));
    }

    pub async fn revoking_a_shared_prefix_revokes_every_key_with_it(b: Backend) {
        let (_, one) = key(&team_a(), "SAME", 'a', t0());
        let (_, two) = key(&team_b(), "SAME", 'b', mins(1));
        let (_, other) = key(&team_a(), "DIFF", 'c', mins(2));
        for k in [&one, &two, &other] {
            b.keys.insert(k).await.unwrap();
        }
        let mut revoked = b
            .keys
            .revoke(&prefix("kr_live_SAME"), mins(5))
            .await
            .unwrap();
        revoked.sort_by_key(|k| k.created_at);
        assert_eq!(revoked.len(), 2);
        assert_eq!(
            (revoked[0].hash, revoked[0].revoked_at),
            (one.hash, Some(mins(5)))
        );
        assert_eq!(
            (revoked[1].hash, revoked[1].revoked_at),
            (two.hash, Some(mins(5)))
        );
        let all = b.keys.list(None).await.unwrap();
        let usable: Vec<_> = all.iter().filter(|k| k.is_usable_at(mins(6))).collect();
        assert_eq!(usable, vec![&other]);
    }

    pub async fn revoking_again_keeps_the_first_revocation_time(b: Backend) {
        let (plain, k) = key(&team_a(), "AAAA", 'a', t0());
        b.keys.insert(&k).await.unwrap();
        b.keys.revoke(&plain.prefix(), mins(10)).await.unwrap();
        let again = b.keys.revoke(&plain.prefix(), mins(20)).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].revoked_at, Some(mins(10)));
        let stored = b.keys.find_by_hash(&plain.hash()).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, Some(mins(10)));
    }

    pub async fn revoking_an_unknown_prefix_revokes_nothing(b: Backend) {
        let (plain, k) = key(&team_a(), "AAAA", 'a', t0());
        b.keys.insert(&k).await.unwrap();
        assert!(
            b.keys
                .revoke(&prefix("kr_live_ZZZZ"), mins(1))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(b.keys.find_by_hash(&plain.hash()).await.unwrap(), Some(k));
    }

    pub async fn an_expired_key_is_not_usable(b: Backend) {
        let (plain, mut k) = key(&team_a(), "AAAA", 'a', t0());
        k.expires_at = Some(t0() + Duration::days(1));
        b.keys.insert(&k).await.unwrap();
        let stored = b.keys.find_by_hash(&plain.hash()).await.unwrap().unwrap();
        assert!(stored.is_usable_at(t0() + Duration::hours(23)));
        assert!(!stored.is_usable_at(t0() + Duration::days(1)));
    }

    pub async fn the_store_is_empty_until_a_key_is_added(b: Backend) {
        assert!(b.keys.is_empty().await.unwrap());
        assert!(b.keys.list(None).await.unwrap().is_empty());
        let (plain, k) = key(&team_a(), "AAAA", 'a', t0());
        b.keys.insert(&k).await.unwrap();
        assert!(!b.keys.is_empty().await.unwrap());
        b.keys.revoke(&plain.prefix(), mins(1)).await.unwrap();
        assert!(
            !b.keys.is_empty().await.unwrap(),
            "a revoked key is still a key"
        );
    }

    pub async fn touching_a_key_records_its_last_use_and_never_goes_back(b: Backend) {
        let (plain, k) = key(&team_a(), "AAAA", 'a', t0());
        b.keys.insert(&k).await.unwrap();
        b.keys.touch(&k.hash, mins(5)).await.unwrap();
        let read = b.keys.find_by_hash(&plain.hash()).await.unwrap().unwrap();
        assert_eq!(read.last_used_at, Some(mins(5)));
        assert_eq!(read.created_at, k.created_at, "nothing else changes");
        // An older use recorded late (another instance) does not move it back.
        b.keys.touch(&k.hash, mins(3)).await.unwrap();
        let read = b.keys.find_by_hash(&plain.hash()).await.unwrap().unwrap();
        assert_eq!(read.last_used_at, Some(mins(5)));
        b.keys.touch(&k.hash, mins(9)).await.unwrap();
        let listed = b.keys.list(None).await.unwrap();
        assert_eq!(listed[0].last_used_at, Some(mins(9)));
    }

    pub async fn touching_an_unknown_key_changes_nothing(b: Backend) {
        let (stranger, _) = key(&team_a(), "ZZZZ", 'z', t0());
        b.keys.touch(&stranger.hash(), mins(1)).await.unwrap();
        assert!(b.keys.is_empty().await.unwrap(), "no key was created");
    }
}
