//! Pre-initialization: a binding's `init(config)` runs once, when the binding loads, and the
//! instance it leaves is snapshotted (wasmtime's Wizer) into a component of the binding's own.
//! Every exchange then starts from that initialized state, copy-on-write from the snapshot's
//! memory image: no config parsed again, no heap grown again (each growth is an `mprotect`,
//! which the kernel follows with a TLB shootdown across the gateway's threads), one guest call
//! fewer per step. Isolation is unchanged: each exchange still gets an instance of its own,
//! and what it leaves in memory is reset to the snapshot when it is dropped.
//!
//! A binding runs `init` per exchange instead when a snapshot would not stand for it: its
//! `init` read something that changes (state, the clock, the network, WASI), the component is
//! larger than [`MAX_BYTES`] (an interpreter, whose compiled copy per binding would cost tens
//! of MB and seconds), or Wizer does not handle its shape.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{ComponentType, Instance as Raw, Lift, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use super::bindings::{Hooks, PolicyPre};
use super::capability::Grants;
use super::engine::{self, Fault, Host, Instance, Keep, Runtime};
use super::exchange::View;
use crate::config::PolicyLimits;

/// Components above this size run `init` per exchange rather than get a compiled snapshot per binding.
pub const MAX_BYTES: usize = 8 << 20;

/// A binding's compiled component and the hooks its `init` asked for.
pub struct Prepared {
    pub pre: PolicyPre<Host>,
    pub hooks: Hooks,
    /// Whether instances start initialized (`init` is not called again).
    pub initialized: bool,
}

/// Why a binding could not be prepared: its component, or its `init`.
pub enum Failure {
    Compile(String),
    Start(Fault),
}

/// Compiles `bytes` for one binding and runs its `init(config)` once, snapshotting the result
/// when it may stand for every exchange.
pub async fn prepare(
    rt: &'static Runtime,
    bytes: Arc<[u8]>,
    config: &String,
    limits: PolicyLimits,
    grants: Arc<Grants>,
    canary: View,
) -> Result<Prepared, Failure> {
    let wizer = Wizer::new();
    let instrumented = match bytes.len() <= MAX_BYTES {
        true => wizer.instrument_component(&bytes).map_err(|e| format!("{e:#}")),
        false => Err(format!("the component is larger than {} MiB", MAX_BYTES >> 20)),
    };
    let (cx, instrumented) = match instrumented {
        Ok(done) => done,
        Err(why) => return fresh(rt, bytes.to_vec(), config, limits, grants, canary, &why).await,
    };
    let pre = compiled(rt, instrumented, None).await?;
    let (mut inst, raw) = Instance::start_raw(rt, &pre, limits, grants.clone(), canary).await.map_err(Failure::Start)?;
    let hooks = inst.init(config).await.map_err(Failure::Start)?;
    let deadline = inst.deadline();
    let store = inst.store_mut();
    let reach = store.data().reach;
    if let Some(what) = reach.changing {
        log(&grants, false, &format!("its init reads {what}"));
        return Ok(Prepared { pre, hooks, initialized: false });
    }
    store.set_epoch_deadline(limits.timeout_ms);
    let mut probe = Probe { store, raw, failed: None };
    let snapshot = engine::within(deadline, &limits, wizer.snapshot_component(&cx, &mut probe)).await.map_err(Failure::Start)?;
    let failed = probe.failed.take();
    drop(inst);
    let snapshot = match (snapshot, failed) {
        (Ok(s), None) => s,
        (Err(e), _) => return fresh_with(pre, hooks, &grants, &format!("{e:#}")),
        (_, Some(why)) => return fresh_with(pre, hooks, &grants, &why),
    };
    // A secret the init read may be left in the snapshot's memory: such a snapshot is never
    // written to the compile cache.
    let keep = if reach.secrets { Keep::InMemory } else { Keep::OnDisk };
    let pre = compiled(rt, snapshot, Some(keep)).await?;
    log(&grants, true, "");
    Ok(Prepared { pre, hooks, initialized: true })
}

/// The binding runs `init` on every instance of the component as it is.
async fn fresh(
    rt: &'static Runtime,
    bytes: Vec<u8>,
    config: &String,
    limits: PolicyLimits,
    grants: Arc<Grants>,
    canary: View,
    why: &str,
) -> Result<Prepared, Failure> {
    let pre = compiled(rt, bytes, None).await?;
    let (_, hooks) = Instance::start(rt, &pre, Some(config), limits, grants.clone(), canary).await.map_err(Failure::Start)?;
    let hooks = hooks.ok_or_else(|| Failure::Start(Fault::Start("init did not run".into())))?;
    fresh_with(pre, hooks, &grants, why)
}

fn fresh_with(pre: PolicyPre<Host>, hooks: Hooks, grants: &Grants, why: &str) -> Result<Prepared, Failure> {
    log(grants, false, why);
    Ok(Prepared { pre, hooks, initialized: false })
}

fn log(grants: &Grants, initialized: bool, why: &str) {
    match initialized {
        true => tracing::debug!(policy = %grants.policy, server = %grants.server, "policy pre-initialized: instances start from its initialized state"),
        false => tracing::debug!(policy = %grants.policy, server = %grants.server, "policy runs init on every instance: {why}"),
    }
}

/// Compiles off the runtime's threads, bounded as every compile is; `keep` is `None` for a
/// component shared by bindings (kept in memory by content), or how to keep a binding's own.
async fn compiled(rt: &'static Runtime, bytes: Vec<u8>, keep: Option<Keep>) -> Result<PolicyPre<Host>, Failure> {
    let compile = tokio::task::spawn_blocking(move || match keep {
        None => rt.prepare(&bytes),
        Some(keep) => rt.prepare_own(&bytes, keep),
    });
    match tokio::time::timeout(super::compile::TIMEOUT, compile).await {
        Ok(Ok(done)) => done.map_err(Failure::Compile),
        Ok(Err(e)) => Err(Failure::Compile(e.to_string())),
        Err(_) => Err(Failure::Compile(format!("took longer than {} s to compile", super::compile::TIMEOUT.as_secs()))),
    }
}

/// Wizer's view of the initialized instance: the values of its globals and the contents of its
/// memories, read through the exports the instrumentation added. A failed read is remembered,
/// and the snapshot discarded.
struct Probe<'a> {
    store: &'a mut Store<Host>,
    raw: Raw,
    failed: Option<String>,
}

impl Probe<'_> {
    async fn call<R: ComponentType + Lift + Send + Sync + 'static>(&mut self, instance: &str, func: &str) -> Option<R> {
        if self.failed.is_some() {
            return None;
        }
        let store = &mut *self.store;
        let read = async {
            let (_, group) = self.raw.get_export(&mut *store, None, instance).ok_or_else(|| format!("no export {instance}"))?;
            let (_, f) = self.raw.get_export(&mut *store, Some(&group), func).ok_or_else(|| format!("no export {instance}#{func}"))?;
            let f = self.raw.get_typed_func::<(), (R,)>(&mut *store, f).map_err(|e| format!("{e:#}"))?;
            let (r,) = f.call_async(&mut *store, ()).await.map_err(|e| format!("{e:#}"))?;
            Ok::<R, String>(r)
        };
        match read.await {
            Ok(r) => Some(r),
            Err(why) => {
                self.failed = Some(format!("its state could not be read: {why}"));
                None
            }
        }
    }
}

impl ComponentInstanceState for Probe<'_> {
    async fn call_func_ret_list_u8(&mut self, instance: &str, func: &str, contents: impl FnOnce(&[u8]) + Send) {
        match self.call::<WasmList<u8>>(instance, func).await {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func).await.unwrap_or_default().to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func).await.unwrap_or_default().to_bits()
    }
}
