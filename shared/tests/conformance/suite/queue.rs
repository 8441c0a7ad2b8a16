//! `RunQueue` conformance: what is enqueued is delivered, as sent.

use krafter_shared::domain::RunMessage;

use crate::backend::Backend;
use crate::fixtures::*;

fn sorted(mut messages: Vec<RunMessage>) -> Vec<RunMessage> {
    messages.sort_by_key(|m| (m.run_id, m.attempt));
    messages
}

conformance_tests! {
    pub async fn enqueued_runs_are_delivered_as_sent(b: Backend) {
        let j = interval_job(&team_a());
        let mut paused = interval_job(&team_b());
        paused.generation = 4;
        let runs = vec![
            scheduled_run(&j, mins(5), 1),
            scheduled_run(&j, mins(5), 2),
            manual_run(&j, secs(17)),
            scheduled_run(&paused, mins(10), 3),
        ];
        let timed: Vec<_> = runs.iter().map(|m| (m.clone(), mins(5))).collect();
        b.queue.enqueue(&timed).await.unwrap();

        let delivered = b.probe.drain(mins(6)).await.unwrap();
        assert_eq!(sorted(delivered), sorted(runs));
        assert!(
            b.probe.drain(mins(7)).await.unwrap().is_empty(),
            "each was acknowledged"
        );
    }

    pub async fn separate_enqueues_are_all_delivered(b: Backend) {
        let j = interval_job(&team_a());
        let first = scheduled_run(&j, mins(5), 1);
        let second = scheduled_run(&j, mins(10), 1);
        b.queue.enqueue(&[(first.clone(), mins(5))]).await.unwrap();
        b.queue
            .enqueue(&[(second.clone(), mins(10))])
            .await
            .unwrap();
        let delivered = b.probe.drain(mins(11)).await.unwrap();
        assert_eq!(sorted(delivered), sorted(vec![first, second]));
    }

    pub async fn enqueueing_nothing_delivers_nothing(b: Backend) {
        b.queue.enqueue(&[]).await.unwrap();
        assert!(b.probe.drain(mins(60)).await.unwrap().is_empty());
    }
}
