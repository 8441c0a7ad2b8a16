//! `AuditStore` conformance.

use chrono::Duration;
use krafter_shared::domain::{
    AuditAction, AuditEntry, AuditFilter, AuditId, AuditOutcome, JobId, TeamId,
};
use krafter_shared::ports::PageRequest;

use crate::backend::Backend;
use crate::fixtures::*;

fn entry(team: &TeamId, minute: i64, job: Option<JobId>, action: AuditAction) -> AuditEntry {
    AuditEntry {
        id: AuditId::new(),
        team: team.clone(),
        at: mins(minute),
        action,
        job_id: job,
        key_prefix: Some(prefix("kr_live_abcd")),
        outcome: AuditOutcome(200),
        request_id: format!("req-{minute}"),
        source: "127.0.0.1".into(),
    }
}

conformance_tests! {
    pub async fn entries_are_kept_per_team_and_listed_newest_first(b: Backend) {
        let job = JobId::new();
        let mut written = Vec::new();
        for (i, action) in AuditAction::ALL.into_iter().enumerate() {
            let e = entry(&team_a(), i as i64, Some(job), action);
            b.audit.record(&e).await.unwrap();
            written.push(e);
        }
        let other = entry(&team_b(), 3, None, AuditAction::CreateJob);
        b.audit.record(&other).await.unwrap();
        let all = b.audit.list(&team_a(), PageRequest::all(), &AuditFilter::default()).await.unwrap();
        written.reverse();
        assert_eq!(all.items, written);
        assert!(all.next.is_none());
        let theirs = b.audit.list(&team_b(), PageRequest::all(), &AuditFilter::default()).await.unwrap();
        assert_eq!(theirs.items, vec![other]);
    }

    pub async fn paging_and_filters_compose(b: Backend) {
        let (j1, j2) = (JobId::new(), JobId::new());
        let mut of_j1 = Vec::new();
        for m in 0..10 {
            let job = if m % 2 == 0 { j1 } else { j2 };
            let e = entry(&team_a(), m, Some(job), AuditAction::UpdateJob);
            b.audit.record(&e).await.unwrap();
            if job == j1 && m >= 4 {
                of_j1.push(e);
            }
        }
        of_j1.reverse();
        let filter = AuditFilter { job_id: Some(j1), from: Some(mins(4)), until: None };
        let mut seen = Vec::new();
        let mut page = PageRequest::first(2);
        loop {
            let got = b.audit.list(&team_a(), page, &filter).await.unwrap();
            seen.extend(got.items);
            match got.next {
                Some(after) => page = PageRequest { limit: Some(2), after: Some(after) },
                None => break,
            }
        }
        assert_eq!(seen, of_j1);
        let until = AuditFilter { until: Some(mins(2)), ..Default::default() };
        let early = b.audit.list(&team_a(), PageRequest::all(), &until).await.unwrap();
        assert_eq!(early.items.len(), 2);
    }

    pub async fn an_entry_without_a_key_or_job_reads_back_as_written(b: Backend) {
        let e = AuditEntry {
            key_prefix: None,
            job_id: None,
            source: "cli".into(),
            outcome: AuditOutcome(403),
            ..entry(&team_a(), 1, None, AuditAction::RotateSecret)
        };
        b.audit.record(&e).await.unwrap();
        let got = b.audit.list(&team_a(), PageRequest::all(), &AuditFilter::default()).await.unwrap();
        assert_eq!(got.items, vec![e.clone()]);
        // Pruning is the store's: SQLite deletes, DynamoDB's TTL expires (prune deletes
        // nothing). Either way, what it says it deleted is gone, and only that.
        let newer = entry(&team_a(), 5, None, AuditAction::CreateJob);
        b.audit.record(&newer).await.unwrap();
        let pruned = b.audit.prune(mins(1) + Duration::seconds(1)).await.unwrap();
        let left = b.audit.list(&team_a(), PageRequest::all(), &AuditFilter::default()).await.unwrap();
        match pruned {
            1 => assert_eq!(left.items, vec![newer]),
            0 => assert_eq!(left.items, vec![newer, e]),
            n => panic!("pruned {n} of one old entry"),
        }
    }
}
