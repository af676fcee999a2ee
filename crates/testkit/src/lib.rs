//! Test doubles of the Slack Web API, the GitHub REST API and the Amazon ECS
//! API (deployments, for `fargate-doctor watch`) that behave like the real
//! services (status codes, error bodies, headers, rate limits,
//! pagination), plus an independent webhook-signature oracle.
//!
//! Each double is an HTTP server on `127.0.0.1` running on the current tokio
//! runtime; point the code under test at its `api_url()`.
//!
//! This crate is test-only code (`publish = false`).

pub mod ecs;
pub mod github;
mod server;
pub mod sign;
pub mod slack;
