//! The embedded executor: takes due runs from the SQLite queue in batches, records their
//! attempts, makes the calls concurrently (bounded), and records outcomes in batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tracing::{error, warn};

use crate::adapters::sqlite::{Delivery, SqliteRunQueue};
use crate::executor::{Disposition, Executor, Started, Step};
use crate::ports::{Clock, WebhookResponse};

/// A dequeued message stays leased this long; longer than any attempt (300 s) can take.
const LEASE: Duration = Duration::from_secs(600);
const MAX_BATCH: usize = 512;
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// An attempt whose call has ended, with the queue message it came from.
struct Finished {
    started: Started,
    response: WebhookResponse,
    seq: i64,
}

pub(crate) struct Worker {
    pub queue: SqliteRunQueue,
    pub executor: Executor,
    pub clock: Arc<dyn Clock>,
    pub concurrency: usize,
    pub shutdown_grace: Duration,
}

/// What one turn of the loop did.
enum Turn {
    Worked,
    /// Nothing was due: wait until something may be.
    Idle,
    Stop,
}

impl Worker {
    /// Takes due runs and works them until told to stop; then lets the attempts in flight
    /// finish, within the grace period.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let (tx, rx) = mpsc::unbounded_channel::<Finished>();
        let finisher = tokio::spawn(finish_loop(rx, self.executor.clone(), self.queue.clone()));
        let deliveries = self.queue.deliveries();
        while !*stop.borrow() {
            match self.turn(&permits, &tx, &mut stop).await {
                Turn::Worked => {}
                Turn::Idle => {
                    let wait = self.until_next_delivery().await;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = deliveries.notified() => {}
                        _ = stop.changed() => break,
                    }
                }
                Turn::Stop => break,
            }
        }
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

    /// One turn: as many permits as are free (at least one, waited for), that many due
    /// runs taken, their attempts recorded, and each to send started on its own task.
    async fn turn(
        &self,
        permits: &Arc<Semaphore>,
        tx: &mpsc::UnboundedSender<Finished>,
        stop: &mut watch::Receiver<bool>,
    ) -> Turn {
        let first = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return Turn::Stop },
            _ = stop.changed() => return Turn::Stop,
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
                return Turn::Worked;
            }
        };
        if batch.is_empty() {
            return Turn::Idle;
        }
        let messages: Vec<_> = batch.iter().map(|d| d.message.clone()).collect();
        match self.executor.begin(&messages).await {
            Ok(steps) => self.dispatch(batch, steps, held, tx, now).await,
            Err(e) => {
                error!(error = %e, "could not record attempts; the runs are retried in 1 s");
                let later = now + Duration::from_secs(1);
                for d in &batch {
                    self.release(d.seq, later).await;
                }
            }
        }
        Turn::Worked
    }

    /// Acknowledges the runs that are settled, releases those to come back later, and
    /// starts each call to make with one of the held permits.
    async fn dispatch(
        &self,
        batch: Vec<Delivery>,
        steps: Vec<Step>,
        mut held: Vec<OwnedSemaphorePermit>,
        tx: &mpsc::UnboundedSender<Finished>,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let mut acks = Vec::new();
        for (delivery, step) in batch.into_iter().zip(steps) {
            match step {
                Step::Settled(Disposition::Done) => acks.push(delivery.seq),
                Step::Settled(Disposition::Later(wait)) => {
                    self.release(delivery.seq, now + wait).await;
                }
                Step::Send(started) => {
                    let Some(permit) = held.pop() else {
                        unreachable!("one permit is held per dequeued message")
                    };
                    let executor = self.executor.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let response = executor.perform(&started).await;
                        let seq = delivery.seq;
                        let _ = tx.send(Finished {
                            started,
                            response,
                            seq,
                        });
                        drop(permit);
                    });
                }
            }
        }
        if let Err(e) = self.queue.ack(&acks).await {
            error!(error = %e, "could not acknowledge settled runs (they will be settled again)");
        }
    }

    async fn release(&self, seq: i64, at: chrono::DateTime<chrono::Utc>) {
        if let Err(e) = self.queue.release(seq, at).await {
            error!(error = %e, "could not release a run");
        }
    }

    async fn until_next_delivery(&self) -> Duration {
        match self.queue.next_delivery_at().await {
            Ok(Some(t)) => (t - self.clock.now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_SLEEP),
            _ => MAX_SLEEP,
        }
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
        let seqs: Vec<i64> = batch.iter().map(|f| f.seq).collect();
        let done: Vec<_> = batch.into_iter().map(|f| (f.started, f.response)).collect();
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
