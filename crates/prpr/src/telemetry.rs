//! Logs: JSON lines on stdout by default, which the awslogs driver ships to
//! CloudWatch as they are; `LOG_FORMAT=pretty` for a terminal. `RUST_LOG`
//! filters as usual (default `info`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    // A second init (tests, replay after serve) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .try_init(),
        LogFormat::Pretty => builder.with_target(false).try_init(),
    };
}
