//! Black-box tests of the embedded application over HTTP.

mod auth;
mod endpoints;
mod executor;
mod helpers;
mod hosted;
mod quickstart;
mod scheduling;
mod targets;
mod validation;
