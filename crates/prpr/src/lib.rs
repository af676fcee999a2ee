//! prpr: GitHub pull-request events in, Slack notifications out.
//!
//! Data flows one way, and the module list follows it:
//!
//! 1. [`intake`] — the HTTP server: `POST /webhook` reads the raw body, checks the
//!    signature ([`intake::signature`]), decodes JSON or prpr's form encoding and
//!    answers GitHub within milliseconds.
//! 2. [`github`] — typed views of the webhook payloads the rules need;
//!    [`ecs_event`] the same for ECS events from EventBridge (`POST /aws/events`).
//! 3. [`pipeline`] — one accepted delivery, one store transaction: record the
//!    delivery ID (dedup), run the [`rules`] against the stored PR state, write the
//!    new state and the resulting notifications to the outbox.
//! 4. [`rules`] — pure functions of (event, PR state, config) → notices.
//! 5. [`notice`] — the rules' output as data: who is told what about which PR.
//! 6. [`store`] — SQLite (default) or PostgreSQL: deliveries, PR state, and the
//!    outbox of notices.
//! 7. [`outbox`] — the sender task: rate limits, retries, dead letters.
//! 8. [`slack`] — rendering notices into Slack's markup ([`slack::render`], the
//!    only place that writes it) and the publishers (Slack Web API or console).
//!
//! [`server`] accepts connections for [`intake`] within limits (header and
//! idle timeouts, a connection cap). [`config`] holds settings and the
//! GitHub→Slack member map; [`clock`] is the injected time; [`telemetry`] sets up
//! JSON logs; [`webhook_setup`] registers the webhook on a repository
//! (`prpr webhook`); [`github::client`] is the GitHub REST client of the
//! bot itself, used by [`github::catchup`] to have GitHub redeliver what
//! prpr missed.

pub mod app;
pub mod clock;
pub mod config;
pub mod ecs_event;
pub mod github;
pub mod intake;
pub mod notice;
pub mod outbox;
pub mod pipeline;
pub mod reminders;
pub mod rules;
pub mod server;
pub mod slack;
pub mod store;
pub mod telemetry;
pub mod webhook_setup;
