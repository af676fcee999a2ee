//! prpr's integration tests, as one test binary.
//!
//! Each module is one suite (named as the file it used to be:
//! `cargo test -p prpr --test integration -- faults::` runs the fault
//! suite). One binary instead of ten means one link of sqlx, axum and
//! reqwest instead of ten, and the suites' tests run side by side instead of
//! one binary after another: most of them wait on a server, a Slack double
//! or a timeout, not on the CPU.
//!
//! - [`support`]: the harness (the real binary on a random port, the
//!   server's database in the test's hand, waits with bounds).
//! - [`in_process`]: `app::run` and the intake router held in hand, some on
//!   a paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure with its message

mod support;

mod aws_events;
mod backfill;
mod catch_up;
mod cli;
mod delivery;
mod faults;
mod in_process;
mod intake;
mod multi_task;
mod notifications;
mod properties;
mod reminders;
mod rules_state;
mod store;
mod teams;
mod threads;
