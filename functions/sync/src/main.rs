//! The hosted schedule sync function: the jobs table's DynamoDB stream (batches, partial
//! batch failures, retries, then the sync dead-letter queue) → each changed job read again
//! and its EventBridge schedules made what it says.

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use krafter_shared::hosted::{AwsClients, Hosted, handle_dynamodb_event, process_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    krafter_shared::hosted::init_lambda_tracing();
    let env = process_env();
    let (resources, settings) = (env.resources()?, env.settings()?);
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let hosted = &Hosted::new(AwsClients::new(&config), resources, settings);
    let handler = &hosted.sync_handler();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let now = hosted.clock.now();
        let (response, _) = handle_dynamodb_event(handler, event.payload, now).await;
        Ok::<DynamoDbEventResponse, Error>(response)
    }))
    .await
}
