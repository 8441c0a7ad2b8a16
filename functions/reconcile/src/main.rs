//! The hosted reconcile function, run every 5 minutes by EventBridge Scheduler: its share of
//! the slow sweep (schedules that drifted from the store repaired, schedules no job wants
//! removed, paced under `KRAFTER_SWEEP_CALLS_PER_SEC`), and, once per sweep, the prune of old
//! executions. Returns what it did.

use krafter_shared::hosted::{AwsClients, Hosted, process_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    krafter_shared::hosted::init_lambda_tracing();
    let env = process_env();
    let (resources, settings) = (env.resources()?, env.settings()?);
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let hosted = &Hosted::new(AwsClients::new(&config), resources, settings);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let r = hosted.reconcile().await;
        krafter_shared::hosted::flush_metrics();
        let r = r?;
        Ok::<Value, Error>(json!({
            "jobs": r.jobs,
            "schedules_repaired": r.schedules_repaired,
            "orphans_removed": r.orphans_removed,
            "executions_pruned": r.executions_pruned,
            "scheduler_calls": r.scheduler_calls,
            "sweep_started": r.started,
            "sweep_finished": r.finished,
        }))
    }))
    .await
}
