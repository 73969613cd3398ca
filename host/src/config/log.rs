//! `log:`, the gateway's own log on stderr: its format and which events it keeps. The
//! environment overrides both (`TOLLGATE_LOG`, `TOLLGATE_LOG_FORMAT`), so an operator can turn
//! on debug lines without editing the file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogLines,
    /// Which events: a filter directive (`info`, `warn`, `info,tollgate::backend=debug`).
    #[serde(default = "info")]
    pub level: String,
}

fn info() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogLines::default(), level: info() }
    }
}

/// How each line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLines {
    /// For a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log pipeline: `time`, `level`, `target`, `message`, the
    /// event's fields, and `trace_id`/`span_id` inside a traced exchange.
    Json,
}

impl LogConfig {
    /// As the environment overrides it: `TOLLGATE_LOG` (a level or filter directive) and
    /// `TOLLGATE_LOG_FORMAT` (`json` or `text`).
    pub fn with_env(&self) -> LogConfig {
        let mut out = self.clone();
        if let Ok(level) = std::env::var("TOLLGATE_LOG")
            && !level.trim().is_empty()
        {
            out.level = level;
        }
        match std::env::var("TOLLGATE_LOG_FORMAT").as_deref().map(str::trim) {
            Ok("json") => out.format = LogLines::Json,
            Ok("text") => out.format = LogLines::Text,
            _ => {}
        }
        out
    }

    /// Why `level` is not a filter directive, if it is not.
    pub fn check(&self) -> Result<(), String> {
        tracing_subscriber::EnvFilter::try_new(&self.level).map(drop).map_err(|e| format!("not a log filter: {e}"))
    }
}
