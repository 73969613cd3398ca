//! Maps a path in the config (`servers[1].backend.http`) to its line in the file,
//! so that problems found after parsing still say where they are.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line numbers (1-based) of every mapping key and sequence item in a YAML document.
#[derive(Debug, Default)]
pub struct Locator {
    lines: HashMap<String, usize>,
}

impl Locator {
    pub fn new(text: &str) -> Locator {
        let mut walk = Walk::default();
        let mut parser = Parser::new_from_str(text);
        // A document that does not parse has no lines to offer; serde reports its error.
        let _ = parser.load(&mut walk, false);
        Locator { lines: walk.lines }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { key: Option<String>, expect_key: bool },
    Seq { index: usize },
}

#[derive(Default)]
struct Walk {
    stack: Vec<(String, Frame)>,
    lines: HashMap<String, usize>,
}

impl Walk {
    fn current_path(&self) -> String {
        self.stack.last().map(|(p, _)| p.clone()).unwrap_or_default()
    }

    /// Path of the value that is about to start, recording its line.
    fn value_path(&mut self, mark: Marker) -> Option<String> {
        let base = self.current_path();
        let (_, frame) = self.stack.last_mut()?;
        let path = match frame {
            Frame::Map { key, expect_key } => {
                *expect_key = true;
                let k = key.take()?;
                if base.is_empty() { k } else { format!("{base}.{k}") }
            }
            Frame::Seq { index } => {
                let p = format!("{base}[{index}]");
                *index += 1;
                p
            }
        };
        self.lines.entry(path.clone()).or_insert(mark.line());
        Some(path)
    }
}

impl MarkedEventReceiver for Walk {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some((base, Frame::Map { key, expect_key })) = self.stack.last_mut()
                    && *expect_key
                {
                    let path = if base.is_empty() { value.clone() } else { format!("{base}.{value}") };
                    self.lines.entry(path).or_insert(mark.line());
                    *key = Some(value);
                    *expect_key = false;
                    return;
                }
                self.value_path(mark);
            }
            Event::MappingStart(..) => {
                let path = if self.stack.is_empty() { String::new() } else { self.value_path(mark).unwrap_or_default() };
                self.stack.push((path, Frame::Map { key: None, expect_key: true }));
            }
            Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() { String::new() } else { self.value_path(mark).unwrap_or_default() };
                self.stack.push((path, Frame::Seq { index: 0 }));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.value_path(mark);
            }
            _ => {}
        }
    }
}
