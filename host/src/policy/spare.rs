//! Instances prepared ahead of need. Instantiating a component and running its `init` is most
//! of what a policy step costs, and none of it depends on the request: so after a binding hands
//! out an instance, it prepares the next one in the background, while the request waits on its
//! backend. Each instance still serves exactly one exchange and is dropped after it: a request
//! never meets an instance that another request touched, and nothing leaks between callers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::chain::Binding;
use super::engine::{Instance, SLOTS};
use super::exchange::View;

/// Spares kept per binding: enough for a steady stream of requests to find one waiting.
const DEPTH: usize = 2;
/// Spares kept in the whole process (each holds a pool slot), so many bindings cannot starve
/// requests of slots.
const TOTAL: usize = SLOTS as usize / 8;
/// Spares are prepared only while at least this many pool slots are free.
const FREE_SLOTS: usize = SLOTS as usize / 2;

/// Spares ready or being prepared, in the whole process.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// One binding's prepared instances.
#[derive(Default)]
pub struct Spares {
    ready: Mutex<Vec<Instance>>,
    /// Ready plus being prepared, for this binding.
    held: AtomicUsize,
}

impl Spares {
    /// A prepared instance, if one is waiting.
    pub fn take(&self) -> Option<Instance> {
        let inst = self.ready.lock().expect("spares lock").pop()?;
        self.release();
        Some(inst)
    }

    fn release(&self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
        HELD.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether one more spare may be prepared; if so, it is counted as held.
    fn reserve(&self) -> bool {
        if self.held.fetch_add(1, Ordering::AcqRel) >= DEPTH {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        if HELD.fetch_add(1, Ordering::AcqRel) >= TOTAL {
            self.release();
            return false;
        }
        true
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        let n = self.ready.get_mut().map(|v| v.len()).unwrap_or(0);
        HELD.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Prepares one more spare for `b` in the background, unless it has enough, the process holds
/// enough, or the pool is busy. A spare whose `init` fails is dropped: the next request then
/// starts an instance itself and reports the fault.
pub fn refill(b: &Binding) {
    if b.rt.free_slots() < FREE_SLOTS || !b.spares.reserve() {
        return;
    }
    let (rt, pre, config, limits, grants, spares) = (b.rt, b.pre.clone(), b.config.clone(), b.limits, b.grants.clone(), b.spares.clone());
    tokio::spawn(async move {
        let idle = View::idle(grants.server.clone());
        match Instance::start(rt, &pre, &config, limits, grants, idle).await {
            Ok((inst, _)) => spares.ready.lock().expect("spares lock").push(inst),
            Err(_) => spares.release(),
        }
    });
}
