//! Glue between wit-bindgen's `Guest` trait and [`Policy`]: one policy value per instance.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::bindings::exports::tollgate::policy::policy::Guest;
use crate::bindings::tollgate::policy::exchange::Exchange as Raw;
use crate::{Exchange, Hooks, MessageVerdict, Policy, Verdict};

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Implements the exported interface for any [`Policy`]; named by [`crate::export_policy!`].
pub struct Adapter<P>(PhantomData<P>);

fn with<P: Policy, R>(f: impl FnOnce(&mut P) -> R) -> R {
    INSTANCE.with_borrow_mut(|slot| {
        let policy = slot.as_mut().and_then(|b| b.downcast_mut::<P>()).expect("the host calls init before any hook");
        f(policy)
    })
}

impl<P: Policy> Guest for Adapter<P> {
    fn init(config: String) -> Result<Hooks, String> {
        let config: P::Config = serde_json::from_str(&config).map_err(|e| {
            // The position is in the JSON the host passed, not in the user's file: leave it out.
            let text = e.to_string();
            let text = text.find(" at line ").map_or(text.as_str(), |i| &text[..i]).to_owned();
            format!("invalid config: {text}")
        })?;
        let policy = P::new(config)?;
        let hooks = policy.hooks();
        INSTANCE.with_borrow_mut(|slot| *slot = Some(Box::new(policy)));
        Ok(hooks)
    }

    fn on_request(raw: &Raw) -> Verdict {
        with::<P, _>(|p| p.on_request(&Exchange::new(raw)))
    }

    fn on_response(raw: &Raw) -> Verdict {
        with::<P, _>(|p| p.on_response(&Exchange::new(raw)))
    }

    fn on_message(raw: &Raw, message: String) -> MessageVerdict {
        // The host sends what it parsed as JSON-RPC; anything else would be a host bug, passed on untouched.
        let Ok(message) = serde_json::from_str(&message) else { return MessageVerdict::Pass };
        with::<P, _>(|p| p.on_message(&Exchange::new(raw), &message))
    }

    fn visible(raw: &Raw, tool: String) -> bool {
        with::<P, _>(|p| p.visible(&Exchange::new(raw), &tool))
    }
}
