//! The hosted executor function: SQS run queue (batches, partial batch failures) → webhook
//! calls with retries through the queue → executions in DynamoDB.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use krafter_shared::hosted::{AwsClients, Hosted, handle_sqs_event, process_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    krafter_shared::hosted::init_lambda_tracing();
    let env = process_env();
    let (resources, settings) = (env.resources()?, env.settings()?);
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let hosted = Hosted::new(AwsClients::new(&config), resources, settings);
    let handler = &hosted.run_handler()?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, Error>(handle_sqs_event(handler, event.payload).await)
    }))
    .await
}
