//! Operator tooling for the hosted backend on a local AWS emulator, kept out of
//! `krafter-shared` so that the Lambdas do not link it: [`provision`] creates the resources
//! `template.yaml` declares (`krafter aws init`, the hosted-path tests), and [`local`] does
//! what AWS does around the functions (`krafter aws tick`), [`streams`] the jobs table's stream
//! handed to the sync function as Lambda's DynamoDB event source would.

pub mod local;
pub mod provision;
pub mod streams;
