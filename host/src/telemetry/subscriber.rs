//! The process's `tracing` subscriber: log lines to stderr, and the exchange spans for an
//! OpenTelemetry collector when one is configured.
//!
//! Without a collector the OpenTelemetry layer is left out, not added as `None`: an absent
//! `Option` layer counts as one that wants everything, and kept every exchange and policy-step
//! span alive in the registry (with its trace-context parsing) for no one.

use tracing::Dispatch;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

use super::trace::{TARGET, TraceGuard};
use crate::config::{LogConfig, LogLines};

/// The subscriber for `log`, and the guard that flushes the collector's spans at shutdown.
/// Also returns the most verbose level the log lines take, for the `log` bridge.
pub fn build(
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    log: &LogConfig,
) -> (Dispatch, TraceGuard, Option<tracing::level_filters::LevelFilter>) {
    // Checked at load; an environment override that does not parse falls back to `info`.
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level).unwrap_or_else(|_| "info".into());
    let most = filter.max_level_hint();
    let not_spans = tracing_subscriber::filter::filter_fn(|m| m.target() != TARGET);
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    let fmt = match log.format {
        LogLines::Text => fmt.boxed(),
        LogLines::Json => fmt.event_format(super::log_lines::JsonLines).boxed(),
    };
    let fmt = fmt.with_filter(filter).with_filter(not_spans);
    let (otel, guard) = super::trace::layer(provider);
    let registry = tracing_subscriber::registry().with(fmt);
    let dispatch = match otel {
        Some(otel) => Dispatch::new(registry.with(otel)),
        None => Dispatch::new(registry),
    };
    (dispatch, guard, most)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(level: &str) -> LogConfig {
        LogConfig { level: level.into(), ..LogConfig::default() }
    }

    /// Whether an exchange span is recorded under `dispatch`. Callsites cache what the
    /// dispatchers alive want, so that cache is rebuilt for this one first.
    fn span_on(dispatch: &Dispatch) -> bool {
        tracing::dispatcher::with_default(dispatch, || {
            tracing::callsite::rebuild_interest_cache();
            !tracing::info_span!(target: TARGET, "exchange").is_disabled()
        })
    }

    /// One test, so no other test's dispatcher is alive to share the callsites' cache.
    #[test]
    fn exchange_spans_are_on_only_with_a_collector_whatever_the_log_level() {
        for level in ["error", "warn", "info", "debug", "trace"] {
            let (dispatch, _guard, _) = build(None, &log(level));
            assert!(!span_on(&dispatch), "no collector, log level {level}: the exchange span is off");
        }
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let (dispatch, _guard, _) = build(Some(provider), &log("warn"));
        assert!(span_on(&dispatch), "a collector, log level warn: the exchange span is on");
    }
}
