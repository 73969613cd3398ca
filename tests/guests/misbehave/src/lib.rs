//! A policy that goes wrong on purpose when a chosen tool is called: it loops forever,
//! allocates without bound, or panics. Every other message passes untouched.

use serde::Deserialize;
use tollgate_policy_sdk::{Exchange, Hooks, Policy, Verdict, export_policy};

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
}

struct Misbehave(Config);

impl Policy for Misbehave {
    type Config = Config;
    fn new(config: Config) -> Result<Self, String> {
        Ok(Misbehave(config))
    }
    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }
    fn on_request(&mut self, ex: &Exchange) -> Verdict {
        if ex.method() != "tools/call" || ex.target().as_deref() != Some(self.0.on_tool.as_str()) {
            return Verdict::next();
        }
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
