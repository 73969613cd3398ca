//! Instances kept for reuse, for bindings whose policy keeps nothing of an exchange in its own
//! memory (`instances: reused`, the standard policies' default). Creating an instance from a
//! snapshot and resetting its memory after the step cost about 16 µs; the hook itself, a
//! microsecond or two. A kept instance skips both.
//!
//! Kept instances hold pool slots, so they are bounded: a few per binding, and [`BUDGET`] in
//! all, well under the runtime's slots, so steps never wait for a slot an idle instance holds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::engine::Instance;

/// Instances idle at once across all bindings (of the runtime's 256 slots).
pub const BUDGET: usize = 64;
/// Instances idle at once for one binding: enough for each connection thread to find one.
const PER_BINDING: usize = 8;

static IDLE: AtomicUsize = AtomicUsize::new(0);

/// One binding's idle instances.
#[derive(Default)]
pub struct Kept {
    idle: Mutex<Vec<Instance>>,
}

impl Kept {
    /// An idle instance, if there is one.
    pub fn take(&self) -> Option<Instance> {
        let inst = self.idle.lock().expect("kept lock").pop()?;
        IDLE.fetch_sub(1, Ordering::AcqRel);
        Some(inst)
    }

    /// Keeps an instance whose step finished cleanly, within the bounds; drops it otherwise.
    pub fn keep(&self, inst: Instance) {
        let mut idle = self.idle.lock().expect("kept lock");
        if idle.len() >= PER_BINDING {
            return;
        }
        if IDLE.fetch_add(1, Ordering::AcqRel) >= BUDGET {
            IDLE.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        idle.push(inst);
    }
}

impl Drop for Kept {
    /// A binding replaced (a reload) or gone takes its idle instances with it.
    fn drop(&mut self) {
        let n = self.idle.get_mut().map(|v| v.len()).unwrap_or(0);
        IDLE.fetch_sub(n, Ordering::AcqRel);
    }
}
