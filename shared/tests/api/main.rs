//! Black-box tests of the embedded application over HTTP.

mod auth;
mod browser;
mod console;
mod endpoints;
mod executor;
mod helpers;
mod hosted;
mod limits;
mod mcp;
mod openapi;
mod quickstart;
mod scenarios;
mod scheduling;
mod signing;
mod targets;
mod validation;
