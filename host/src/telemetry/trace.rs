//! Spans over OTLP, and W3C trace context in and out.
//!
//! Spans are `tracing` spans under the target [`TARGET`]; only the OpenTelemetry layer listens
//! to that target, so without a collector configured they are disabled and cost a branch.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracerProvider};
use serde_json::Value;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{OtlpProtocol, Telemetry, Traces};

/// The `tracing` target of the spans that become OpenTelemetry spans.
pub const TARGET: &str = "tollgate::otel";

/// Keeps the exporter alive; flushes what is queued when dropped at shutdown.
pub struct TraceGuard(Option<SdkTracerProvider>);

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("tollgate: flushing spans at shutdown: {e}");
        }
    }
}

/// Builds the OTLP exporter. Must run inside the tokio runtime: the batch processor exports
/// from a task on it (tonic and reqwest both need the runtime's reactor).
pub fn provider(t: &Telemetry) -> anyhow::Result<Option<SdkTracerProvider>> {
    let Some(tr) = &t.traces else { return Ok(None) };
    let exporter = exporter(tr)?;
    let batch = opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio)
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(Duration::from_millis(500)).build())
        .build();
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(t.service_name.clone()).build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(tr.sample_ratio)));
    Ok(Some(SdkTracerProvider::builder().with_span_processor(batch).with_resource(resource).with_sampler(sampler).build()))
}

fn exporter(tr: &Traces) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    let headers: HashMap<String, String> =
        tr.headers_from_env.iter().map(|(k, var)| (k.to_ascii_lowercase(), std::env::var(var).unwrap_or_default())).collect();
    let timeout = Duration::from_secs(10);
    let built = match tr.protocol {
        OtlpProtocol::Grpc => {
            let mut map = hyper::HeaderMap::new();
            for (k, v) in &headers {
                map.insert(hyper::header::HeaderName::from_bytes(k.as_bytes())?, hyper::header::HeaderValue::from_str(v)?);
            }
            let meta = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map);
            opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(&tr.endpoint).with_timeout(timeout).with_metadata(meta).build()?
        }
        OtlpProtocol::Http => {
            let url = format!("{}/v1/traces", tr.endpoint.trim_end_matches('/'));
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(timeout)
                .with_headers(headers)
                .build()?
        }
    };
    Ok(built)
}

/// The layer that turns [`TARGET`] spans into OpenTelemetry spans, and the guard that flushes them.
pub fn layer<S>(provider: Option<SdkTracerProvider>) -> (Option<impl tracing_subscriber::Layer<S>>, TraceGuard)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_subscriber::Layer;
    let layer = provider.as_ref().map(|p| {
        let targets = tracing_subscriber::filter::Targets::new().with_target(TARGET, tracing::Level::INFO);
        tracing_opentelemetry::layer().with_tracer(p.tracer("tollgate")).with_filter(targets)
    });
    (layer, TraceGuard(provider))
}

/// The parent a client gave its request: `params._meta` first (where MCP carries context
/// per message), else the HTTP request's `traceparent`, which is then linked instead.
pub fn adopt(span: &tracing::Span, meta: Option<&Value>, headers: &hyper::HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let propagator = TraceContextPropagator::new();
    let from_http = propagator.extract(&HeaderExtractor(headers));
    let from_meta = meta.filter(|m| m.get("traceparent").is_some()).map(|m| propagator.extract(&MetaExtractor(m)));
    use opentelemetry::trace::TraceContextExt;
    match from_meta {
        Some(cx) if cx.span().span_context().is_valid() => {
            let _ = span.set_parent(cx);
            let http = from_http.span().span_context().clone();
            if http.is_valid() {
                span.add_link(http);
            }
        }
        _ if from_http.span().span_context().is_valid() => {
            let _ = span.set_parent(from_http);
        }
        _ => {}
    }
}

/// The W3C headers (`traceparent`, `tracestate`) naming `span` as the parent, or none when it is not recorded.
pub fn context_headers(span: &tracing::Span) -> Vec<(String, String)> {
    if span.is_disabled() {
        return Vec::new();
    }
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(2);
    TraceContextPropagator::new().inject_context(&cx, &mut Collect(&mut out));
    out
}

struct HeaderExtractor<'a>(&'a hyper::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetaExtractor<'a>(&'a Value);

impl Extractor for MetaExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default()
    }
}

struct Collect<'a>(&'a mut Vec<(String, String)>);

impl Injector for Collect<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// A copy of `msg` whose `params._meta` carries the trace context, as the MCP conventions
/// propagate it (unprefixed `traceparent` and `tracestate`, per SEP-414).
pub fn with_context(msg: &crate::mcp::jsonrpc::Message, context: &[(String, String)]) -> crate::mcp::jsonrpc::Message {
    let mut m = msg.clone();
    let params = m.body.entry("params").or_insert_with(|| Value::Object(Default::default()));
    if let Some(meta) = params.as_object_mut().map(|p| p.entry("_meta").or_insert_with(|| Value::Object(Default::default())))
        && let Some(meta) = meta.as_object_mut()
    {
        for (k, v) in context {
            meta.insert(k.clone(), Value::String(v.clone()));
        }
    }
    m
}
