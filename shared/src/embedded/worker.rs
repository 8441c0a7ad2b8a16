//! The embedded executor: takes due runs from the SQLite queue in batches, records their
//! attempts, makes the calls concurrently (bounded), and records outcomes in batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{error, warn};

use crate::adapters::sqlite::SqliteRunQueue;
use crate::executor::{Disposition, Executor, Started, Step};
use crate::ports::{Clock, WebhookResponse};

/// A dequeued message stays leased this long; longer than any attempt (300 s) can take.
const LEASE: Duration = Duration::from_secs(600);
const MAX_BATCH: usize = 512;
const MAX_SLEEP: Duration = Duration::from_secs(30);

type Finished = (Started, WebhookResponse, i64);

pub(crate) struct Worker {
    pub queue: SqliteRunQueue,
    pub executor: Executor,
    pub clock: Arc<dyn Clock>,
    pub concurrency: usize,
    pub shutdown_grace: Duration,
}

impl Worker {
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let (tx, rx) = mpsc::unbounded_channel::<Finished>();
        let finisher = tokio::spawn(finish_loop(rx, self.executor.clone(), self.queue.clone()));
        let deliveries = self.queue.deliveries();
        loop {
            if *stop.borrow() {
                break;
            }
            let first = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stop.changed() => break,
            };
            let mut held = vec![first];
            while held.len() < MAX_BATCH {
                match permits.clone().try_acquire_owned() {
                    Ok(p) => held.push(p),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            let batch = match self.queue.dequeue(now, held.len(), LEASE).await {
                Ok(b) => b,
                Err(e) => {
                    error!(error = %e, "could not take runs from the queue; retrying in 1 s");
                    drop(held);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                drop(held);
                let wait = match self.queue.next_delivery_at().await {
                    Ok(Some(t)) => (t - self.clock.now())
                        .to_std()
                        .unwrap_or_default()
                        .min(MAX_SLEEP),
                    _ => MAX_SLEEP,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = deliveries.notified() => {}
                    _ = stop.changed() => break,
                }
                continue;
            }
            let messages: Vec<_> = batch.iter().map(|d| d.message.clone()).collect();
            let steps = match self.executor.begin(&messages).await {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "could not record attempts; the runs are retried in 1 s");
                    let later = now + Duration::from_secs(1);
                    for d in &batch {
                        if let Err(e) = self.queue.release(d.seq, later).await {
                            error!(error = %e, "could not release a run");
                        }
                    }
                    continue;
                }
            };
            let mut acks = Vec::new();
            for (delivery, step) in batch.into_iter().zip(steps) {
                match step {
                    Step::Settled(Disposition::Done) => acks.push(delivery.seq),
                    Step::Settled(Disposition::Later(wait)) => {
                        if let Err(e) = self.queue.release(delivery.seq, now + wait).await {
                            error!(error = %e, "could not release a run");
                        }
                    }
                    Step::Send(started) => {
                        let Some(permit) = held.pop() else {
                            unreachable!("one permit is held per dequeued message")
                        };
                        let executor = self.executor.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let response = executor.perform(&started).await;
                            let _ = tx.send((started, response, delivery.seq));
                            drop(permit);
                        });
                    }
                }
            }
            if let Err(e) = self.queue.ack(&acks).await {
                error!(error = %e, "could not acknowledge settled runs (they will be settled again)");
            }
        }
        // Stop taking work; let the attempts in flight finish, within the grace period.
        drop(tx);
        let all = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(self.shutdown_grace, permits.acquire_many(all))
            .await
            .is_err()
        {
            warn!("attempts still in flight at shutdown; they will be recorded as interrupted");
            finisher.abort();
            return;
        }
        let _ = finisher.await;
    }
}

/// Records finished attempts in batches: one transaction for many outcomes.
async fn finish_loop(
    mut rx: mpsc::UnboundedReceiver<Finished>,
    executor: Executor,
    queue: SqliteRunQueue,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let seqs: Vec<i64> = batch.iter().map(|f| f.2).collect();
        let done: Vec<_> = batch.into_iter().map(|(s, r, _)| (s, r)).collect();
        let mut delay = Duration::from_millis(100);
        loop {
            match executor.finish(&done).await {
                Ok(()) => break,
                Err(e) => {
                    error!(error = %e, "could not record finished attempts; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Err(e) = queue.ack(&seqs).await {
            error!(error = %e, "could not acknowledge finished runs (they will be settled again)");
        }
    }
}
