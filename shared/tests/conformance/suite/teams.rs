//! `TeamStore` conformance, and the core's team rules (`ensure_team`,
//! `rotate_signing_secret`) on top of each store.

use std::sync::Arc;

use chrono::Duration;
use krafter_shared::domain::{ROTATION_GRACE, TeamSecrets};
use krafter_shared::service::{EnsuredTeam, ensure_team, rotate_signing_secret};

use crate::backend::Backend;
use crate::fixtures::*;

conformance_tests! {
    pub async fn a_teams_secrets_round_trip(b: Backend) {
        let first = TeamSecrets::new(team_a(), t0());
        assert!(b.teams.insert(&first).await.unwrap());
        let rotated = first.rotated(mins(10));
        assert!(b.teams.replace(&rotated, &first.current).await.unwrap());
        assert_eq!(b.teams.get(&team_a()).await.unwrap(), Some(rotated.clone()));
        assert_eq!(
            rotated.previous.as_ref().map(|(s, until)| (s, *until)),
            Some((&first.current, mins(10) + ROTATION_GRACE))
        );
    }

    pub async fn an_unknown_team_has_no_secrets(b: Backend) {
        b.teams
            .insert(&TeamSecrets::new(team_a(), t0()))
            .await
            .unwrap();
        assert_eq!(b.teams.get(&team_b()).await.unwrap(), None);
    }

    pub async fn inserting_an_existing_team_changes_nothing(b: Backend) {
        let first = TeamSecrets::new(team_a(), t0());
        assert!(b.teams.insert(&first).await.unwrap());
        let second = TeamSecrets::new(team_a(), mins(1));
        assert!(!b.teams.insert(&second).await.unwrap());
        assert_eq!(b.teams.get(&team_a()).await.unwrap(), Some(first));
    }

    pub async fn replacing_needs_the_current_secret(b: Backend) {
        let first = TeamSecrets::new(team_a(), t0());
        b.teams.insert(&first).await.unwrap();
        let stale = TeamSecrets::new(team_a(), t0());
        let attempt = stale.rotated(mins(1));
        assert!(
            !b.teams.replace(&attempt, &stale.current).await.unwrap(),
            "a replace based on another secret is refused"
        );
        assert_eq!(b.teams.get(&team_a()).await.unwrap(), Some(first.clone()));
        let missing = TeamSecrets::new(team_b(), t0());
        assert!(!b.teams.replace(&missing, &missing.current).await.unwrap());
        assert_eq!(b.teams.get(&team_b()).await.unwrap(), None, "no upsert");
    }

    pub async fn a_rotation_keeps_the_previous_secret_signing(b: Backend) {
        let EnsuredTeam {
            secrets: first,
            created,
        } = ensure_team(b.teams.as_ref(), &team_a(), t0())
            .await
            .unwrap();
        assert!(created);
        let rotated = rotate_signing_secret(b.teams.as_ref(), &team_a(), mins(1))
            .await
            .unwrap();
        assert_ne!(rotated.current, first.current);
        let signing: Vec<_> = rotated.signing_at(mins(2)).cloned().collect();
        assert_eq!(
            signing,
            vec![rotated.current.clone(), first.current.clone()]
        );
        let after = mins(1) + ROTATION_GRACE + Duration::seconds(1);
        assert_eq!(rotated.signing_at(after).count(), 1);
        // A second rotation drops the first secret at once.
        let again = rotate_signing_secret(b.teams.as_ref(), &team_a(), mins(3))
            .await
            .unwrap();
        let signing: Vec<_> = again.signing_at(mins(4)).cloned().collect();
        assert_eq!(
            signing,
            vec![again.current.clone(), rotated.current.clone()]
        );
        assert_eq!(b.teams.get(&team_a()).await.unwrap(), Some(again));
    }

    pub async fn ensuring_a_team_twice_returns_the_same_secret(b: Backend) {
        let EnsuredTeam {
            secrets: first,
            created,
        } = ensure_team(b.teams.as_ref(), &team_a(), t0())
            .await
            .unwrap();
        let EnsuredTeam {
            secrets: second,
            created: created_again,
        } = ensure_team(b.teams.as_ref(), &team_a(), mins(5))
            .await
            .unwrap();
        assert!(created && !created_again);
        assert_eq!(first, second);
    }

    pub async fn concurrent_first_uses_agree_on_one_secret(b: Backend) {
        let teams = b.teams.clone();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let teams = Arc::clone(&teams);
                tokio::spawn(async move { ensure_team(teams.as_ref(), &team_a(), t0()).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        assert_eq!(results.iter().filter(|t| t.created).count(), 1);
        let stored = b.teams.get(&team_a()).await.unwrap().unwrap();
        assert!(results.iter().all(|t| t.secrets.current == stored.current));
    }
}
