//! Blocking work (files, fsync) on Tokio's blocking pool, inside the
//! caller's tracing span, so that what it logs keeps the request's or the
//! event's fields (`conversation_id`, ...).

/// The span-carrying [`tokio::task::spawn_blocking`] of every crate.
pub(crate) use recall_memory::spawn_blocking as spawn;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    /// An event's message and the span it was logged in.
    type Seen = (String, Option<String>);

    /// Records each event whose message starts with `blocking-test`.
    struct Spans(Arc<Mutex<Vec<Seen>>>);

    struct Message(String);

    impl tracing::field::Visit for Message {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl<S> tracing_subscriber::Layer<S> for Spans
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut message = Message(String::new());
            event.record(&mut message);
            if message.0.starts_with("blocking-test") {
                let span = ctx.event_span(event).map(|s| s.name().to_owned());
                self.0.lock().unwrap().push((message.0, span));
            }
        }
    }

    #[test]
    fn work_on_the_blocking_pool_logs_inside_the_callers_span() {
        // Blocking-pool threads see only the global subscriber, as in the
        // server (no other test of this crate installs one).
        let seen = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(Spans(seen.clone())),
        )
        .expect("the only global subscriber of this test binary");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let span = tracing::info_span!("ingest");
            let _entered = span.enter();
            super::spawn(|| tracing::info!("blocking-test spawn"))
                .await
                .unwrap();
            tokio::task::spawn_blocking(|| tracing::info!("blocking-test plain"))
                .await
                .unwrap();
        });
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("blocking-test spawn".to_owned(), Some("ingest".to_owned())),
                ("blocking-test plain".to_owned(), None),
            ]
        );
    }
}
