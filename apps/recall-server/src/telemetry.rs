//! Logging through `tracing`: pretty at a terminal, JSON otherwise.
//!
//! Nothing logged here or by the routes contains a secret; phone numbers
//! are logged masked (`+1612***2029`).

use std::io::IsTerminal as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

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
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(sink)
        .with_target(false);
    let fmt = if json {
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    } else {
        fmt.boxed()
    };
    // `try_init` fails only when a subscriber is already set: keep that one.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(ClientProtocolErrors)
        .with(fmt)
        .try_init();
}

/// The HTTP layer (actix-http) ends a connection on a malformed request,
/// an oversized request head, a client too slow to send its head, a
/// connection reset or a body the client sent that the route did not
/// read, and logs each as `ERROR stream error: ...`. These are the
/// client's doing, not the server's, and a scanner would flood the error
/// log with them: this layer logs them again at WARN as `client protocol
/// error` and drops the original. Any other actix-http error stays ERROR.
struct ClientProtocolErrors;

/// The `DispatchError` messages that describe what a client did.
const CLIENT_CAUSES: &[&str] = &[
    "request parse error",
    "I/O error",
    "request did not complete within the specified timeout",
    "connection shutdown timeout",
    "handler dropped payload before reading EOF",
];

impl ClientProtocolErrors {
    /// The client's error, when `event` is actix-http reporting one.
    fn cause(event: &Event<'_>) -> Option<String> {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || !metadata.target().starts_with("actix_http::") {
            return None;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let cause = message.0.strip_prefix("stream error: ")?;
        CLIENT_CAUSES
            .iter()
            .any(|c| cause.starts_with(c))
            .then(|| cause.to_owned())
    }
}

impl<S: Subscriber> Layer<S> for ClientProtocolErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        match Self::cause(event) {
            Some(cause) => {
                tracing::warn!(target: "recall_server::http", error = %cause, "client protocol error; connection closed");
                false
            }
            None => true,
        }
    }
}

/// The `message` field of an event.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
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
