//! `fargate-doctor` finds the ECS Fargate traps in CloudFormation templates
//! before AWS does, writes `imagedefinitions.json`, and explains why a task
//! stopped (with the shared `ecs-explain` crate), and `watch` follows a
//! deployment until it truly completes.
//!
//! The flow of `lint`: [`template`] loads YAML/JSON into one node model with
//! positions → [`resolve`] says what values mean without deploying →
//! [`model`] gives typed views (services, task definitions, subnets,
//! pipelines) → [`rules`] check them and report [`rules::Finding`]s →
//! [`output`] prints text, JSON or SARIF. [`lint`] drives it over files and
//! directories (with [`stacks`] linking the templates of one run, and each
//! template checked once per consistent set of condition values); [`cli`]
//! is the command line.

pub mod cli;
pub mod explain;
pub mod imagedefs;
pub mod lint;
pub mod model;
pub mod output;
pub mod resolve;
pub mod rules;
pub mod stacks;
pub mod template;
pub mod watch;
