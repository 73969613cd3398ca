//! A policy that goes wrong on purpose when a chosen tool is called: it loops forever,
//! allocates without bound, or panics, on the request or (with `in_messages`) on each message
//! the backend streams for that call. Every other message passes untouched.

use serde::Deserialize;
use serde_json::Value;
use tollgate_policy_sdk::{Exchange, Hooks, MessageVerdict, Policy, Verdict, export_policy};

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Loop,
    Alloc,
    Panic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    mode: Mode,
    on_tool: String,
    #[serde(default)]
    in_messages: bool,
}

struct Misbehave(Config);

impl Policy for Misbehave {
    type Config = Config;
    fn new(config: Config) -> Result<Self, String> {
        Ok(Misbehave(config))
    }
    fn hooks(&self) -> Hooks {
        if self.0.in_messages { Hooks::MESSAGE } else { Hooks::REQUEST }
    }
    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        if self.chosen(ex) {
            self.misbehave();
        }
        Verdict::next()
    }
    fn on_message(&mut self, ex: &Exchange, _message: &Value) -> MessageVerdict {
        if self.chosen(ex) {
            self.misbehave();
        }
        MessageVerdict::Pass
    }
}

impl Misbehave {
    fn chosen(&self, ex: &Exchange) -> bool {
        ex.method() == "tools/call" && ex.target().as_deref() == Some(self.0.on_tool.as_str())
    }

    fn misbehave(&self) -> ! {
        match self.0.mode {
            Mode::Loop => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Mode::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            Mode::Panic => panic!("misbehave was asked to panic"),
        }
    }
}

export_policy!(Misbehave);
