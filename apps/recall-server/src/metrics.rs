//! Prometheus metrics served at `GET /metrics` (OpenMetrics text format):
//! requests by route and status, latency histograms by route, and the
//! service's own counters (pending post-call events, store errors,
//! greeting fallbacks, ...) read at scrape time.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use recall_service::Service;

/// The labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/webhook/post-call`) or `other`.
    pub route: &'static str,
    /// The HTTP method (`OTHER` for any but the standard ones, so that
    /// invented methods cannot grow the label sets).
    pub method: &'static str,
    /// The status code.
    pub status: u16,
}

/// The labels of the deletion counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeletionLabels {
    /// `transcript` (a call's stored events and transcript), `audio` or
    /// `quarantined` (a refused body).
    part: &'static str,
    /// `deletion_settings` (ElevenLabs') or `retention` (a window).
    reason: &'static str,
}

/// The labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route pattern or `other`.
    pub route: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs to ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Metrics for a server running `service`.
    pub fn new(service: Service) -> Self {
        let mut registry = Registry::with_prefix("recall");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            latency.clone(),
        );
        registry.register_collector(Box::new(ServiceCollector(Arc::new(service))));
        Self {
            registry,
            requests,
            latency,
        }
    }

    /// Records one answered request.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Reads the service's counters at scrape time.
struct ServiceCollector(Arc<Service>);

impl fmt::Debug for ServiceCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstCounter::new(value);
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), fmt::Error> {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

impl Collector for ServiceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let stats = self.0.stats();
        let pending = ConstGauge::new(i64::try_from(self.0.pending_count()).unwrap_or(i64::MAX));
        let metric_encoder = encoder.encode_descriptor(
            "post_call_pending_events",
            "Post-call events stored but not yet turned into memories",
            None,
            pending.metric_type(),
        )?;
        pending.encode(metric_encoder)?;
        let e = &mut encoder;
        let quarantine = self.0.event_log().quarantine_usage();
        gauge(
            e,
            "post_call_failed_events",
            "Post-call events whose processing failed for good (counted from disk at start; `recall replay --failed` retries them)",
            self.0.failed_count() as u64,
        )?;
        gauge(
            e,
            "post_call_quarantined_bodies",
            "Refused post-call bodies kept in quarantine (counted from disk at start)",
            quarantine.files,
        )?;
        gauge(
            e,
            "post_call_quarantine_bytes",
            "Bytes of the refused post-call bodies kept in quarantine",
            quarantine.bytes,
        )?;
        counter(
            e,
            "post_call_quarantine_evicted",
            "Quarantined bodies removed, oldest first, to stay within the quarantine caps",
            quarantine.evicted,
        )?;
        counter(
            e,
            "post_call_field_problems",
            "Fields of processed post-call events skipped or shortened (the rest of each event was used)",
            stats.field_problems(),
        )?;
        counter(
            e,
            "store_errors",
            "Memory-store calls that failed",
            stats.store_errors(),
        )?;
        counter(
            e,
            "greeting_fallbacks",
            "Greetings answered with defaults because the store was slow or failing",
            stats.greeting_fallbacks(),
        )?;
        counter(
            e,
            "post_call_events_stored",
            "Post-call events written durably (duplicates excluded)",
            stats.events_stored(),
        )?;
        counter(
            e,
            "post_call_events_processed",
            "Post-call events turned into memories",
            stats.events_processed(),
        )?;
        counter(
            e,
            "post_call_duplicates",
            "Redelivered post-call events acknowledged without change",
            stats.duplicates(),
        )?;
        counter(
            e,
            "post_call_retries",
            "Post-call processing attempts that failed and will be retried",
            stats.retries(),
        )?;
        counter(
            e,
            "post_call_failures",
            "Post-call events whose processing failed for good",
            stats.processing_failures(),
        )?;
        let deletions = [
            (
                "transcript",
                "deletion_settings",
                stats.transcripts_deleted_by_settings(),
            ),
            (
                "transcript",
                "retention",
                stats.transcripts_deleted_by_retention(),
            ),
            (
                "audio",
                "deletion_settings",
                stats.audio_deleted_by_settings(),
            ),
            ("audio", "retention", stats.audio_deleted_by_retention()),
            (
                "quarantined",
                "retention",
                stats.quarantined_deleted_by_retention(),
            ),
        ];
        let mut family = e.encode_descriptor(
            "deletions",
            "Raw copies deleted, by part (transcript: a call's stored events and transcript; audio: a call's audio; quarantined: a refused body) and reason (ElevenLabs' deletion settings, or a retention window)",
            None,
            ConstCounter::new(0u64).metric_type(),
        )?;
        for (part, reason, value) in deletions {
            let labels = DeletionLabels { part, reason };
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        counter(
            e,
            "deleted_memories",
            "Memories deleted with their call's transcript (deletion_policy = all)",
            stats.memories_deleted(),
        )?;
        counter(
            e,
            "retention_erased_callers",
            "Callers erased for not being heard from within retain_callers_days",
            stats.callers_erased_by_retention(),
        )?;
        counter(
            e,
            "deletion_failures",
            "Deletions that failed; the next retention sweep tries them again",
            stats.deletion_failures(),
        )?;
        Ok(())
    }
}
