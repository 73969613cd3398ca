//! Does nothing on requests: the floor that benches measure.

use tollgate_policy_sdk::{Hooks, Policy, export_policy};

struct Noop;

impl Policy for Noop {
    type Config = serde::de::IgnoredAny;
    fn new(_: Self::Config) -> Result<Self, String> {
        Ok(Noop)
    }
    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }
}

export_policy!(Noop);
