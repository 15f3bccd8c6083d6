//! Logging through `tracing`: pretty at a terminal, JSON otherwise.
//!
//! Nothing logged here or by the routes contains a secret; phone numbers
//! are logged masked (`+1612***2029`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber writing to `sink`. Does nothing when one
/// is already installed (tests start many servers in one process).
pub fn init<W>(format: LogFormat, filter: &str, sink: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        .with_target(false);
    // `try_init` fails only when a subscriber is already set: keep that one.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Installs logging to standard error, written by a background thread so
/// that a slow log consumer (a pipe to journald or a container runtime)
/// never stalls a webhook: request threads only queue the formatted line.
/// Keep the returned guard until the process ends; dropping it flushes
/// what is queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_stderr(format: LogFormat, filter: &str) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    init(format, filter, writer);
    guard
}
