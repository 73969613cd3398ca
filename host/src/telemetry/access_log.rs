//! The access log: one line per MCP exchange, written by a thread of its own so a slow disk
//! or a full pipe never holds up a request. When the writer falls behind, lines are dropped
//! and counted (`tollgate_access_log_dropped_total`), never queued without bound.

use std::io::Write;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use serde_json::{Map, Value};

use crate::config::{AccessLog as Settings, LogFormat, LogLevel, LogTarget};

/// Lines waiting for the writer.
const QUEUE: usize = 16 * 1024;

pub struct AccessLog {
    tx: SyncSender<Vec<u8>>,
    format: LogFormat,
    pub level: LogLevel,
    pub notifications: bool,
}

impl AccessLog {
    pub fn open(s: &Settings) -> std::io::Result<AccessLog> {
        let out: Box<dyn Write + Send> = match s.target() {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::Stderr => Box::new(std::io::stderr()),
            LogTarget::File(p) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p)?),
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        std::thread::Builder::new().name("access-log".into()).spawn(move || {
            let mut out = std::io::BufWriter::new(out);
            while let Ok(line) = rx.recv() {
                let _ = out.write_all(&line);
                // Flush whenever the queue is empty, so lines appear promptly but bursts batch.
                while let Ok(more) = rx.try_recv() {
                    let _ = out.write_all(&more);
                }
                let _ = out.flush();
            }
        })?;
        Ok(AccessLog { tx, format: s.format, level: s.level, notifications: s.notifications })
    }

    /// Queues one entry; false when it was dropped.
    pub fn write(&self, entry: &Map<String, Value>) -> bool {
        let mut line = match self.format {
            LogFormat::Json => serde_json::to_vec(entry).unwrap_or_default(),
            LogFormat::Text => text(entry).into_bytes(),
        };
        line.push(b'\n');
        match self.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// `key=value` pairs; strings with spaces or quotes are JSON-quoted, nested values are JSON.
fn text(entry: &Map<String, Value>) -> String {
    let mut out = String::new();
    for (k, v) in entry {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        match v {
            Value::String(s) if !s.is_empty() && !s.contains([' ', '"', '=', '\n']) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn text_format_quotes_only_what_needs_it() {
        let entry = json!({"method": "tools/call", "error": "rate limit exceeded", "code": -32009, "empty": ""});
        let line = super::text(entry.as_object().unwrap());
        assert_eq!(line, r#"method=tools/call error="rate limit exceeded" code=-32009 empty="""#);
    }
}
