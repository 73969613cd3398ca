//! The Wasm runtime, in four lifetimes: the [`Runtime`] once per process (engine, linker,
//! epoch ticker, instance pool); a [`PolicyPre`] per component, compiled once and shared by
//! its bindings; a binding's [`Grants`]; and an [`Instance`] per policy step of one exchange.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{self, GatewayPolicy, Hooks, Passage, PolicyPre, Verdict};
use super::capability::Grants;
pub use super::compile::Keep;
use super::exchange::{ExchangeRep, View};
use crate::config::{MAX_MEMORY_MB, PolicyLimits};

/// Instances alive at once. Each holds a pool slot for one step (and, kept for reuse, while
/// idle: at most `reuse::BUDGET` of them), so this bounds concurrency of policy code, not of
/// requests; beyond it, steps wait for a slot.
const SLOTS: u32 = 256;
/// The epoch ticks once a millisecond: per-call deadlines are counted in ticks.
const TICK: Duration = Duration::from_millis(1);

/// How many bytes of a slot's linear memory, and of its tables, are reset in place when its
/// instance is dropped, rather than handed back to the kernel. With `PAGEMAP_SCAN` (Linux
/// 6.7+), wasmtime finds the pages an instance dirtied and restores only those (`memcpy` from
/// the initial image, or `memset`), up to this budget: no `madvise`, no page faults for the
/// next instance in the slot, no TLB shootdown across threads. A Rust policy starts with about
/// 1.1 MiB of memory (a 1 MiB stack, then its data) and dirties part of it; 4 MiB covers that
/// with room for its heap, and bounds what an idle slot keeps resident. Without the ioctl, the
/// low addresses are reset with `memset` whether dirtied or not, so little is kept in place and
/// the rest goes back with `madvise`.
fn keep_resident() -> (usize, usize) {
    if PoolingAllocationConfig::is_pagemap_scan_available() { (4 << 20, 64 << 10) } else { (64 << 10, 16 << 10) }
}

/// What compiled code depends on, shared by the gateway's engine and the compiling child's:
/// an artifact loads only into an engine of the same settings.
pub fn settings() -> wasmtime::Config {
    let mut cfg = wasmtime::Config::new();
    cfg.epoch_interruption(true)
        .memory_reservation((MAX_MEMORY_MB as u64) << 20)
        .memory_guard_size(64 << 10)
        .max_wasm_stack(256 << 10)
        .async_stack_size(512 << 10);
    cfg
}

/// The engine's settings; see `docs/policies.md` ("Cost") for what each one was measured against.
fn config() -> wasmtime::Config {
    let (memory_kept, table_kept) = keep_resident();
    let mut pool = PoolingAllocationConfig::default();
    // Sized for small policies: tens of MiB per memory, not the 4 GiB default reservation.
    pool.total_component_instances(SLOTS)
        .total_core_instances(SLOTS * 4)
        .total_memories(SLOTS)
        .total_tables(SLOTS * 4)
        .total_stacks(SLOTS)
        .max_memory_size((MAX_MEMORY_MB as usize) << 20)
        .max_core_instance_size(1 << 20)
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(memory_kept)
        .table_keep_resident(table_kept);
    let mut cfg = settings();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // `perf` names policies' compiled functions from /tmp/perf-PID.map, which wasmtime writes
    // as code loads; off by default, since the file grows with every load.
    if std::env::var_os(PERFMAP_ENV).is_some_and(|v| v == "1") {
        cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    cfg
}

/// Set to `1` to have policy code named in `perf` profiles (`docs/performance.md`).
pub const PERFMAP_ENV: &str = "TOLLGATE_WASM_PERFMAP";

/// Once per process: one engine and one linker, so components compile and link once.
pub struct Runtime {
    pub(super) engine: Engine,
    linker: Linker<Host>,
    slots: Arc<Semaphore>,
    /// Compiled components by content, so a reload compiles only what changed.
    compiled: Mutex<HashMap<[u8; 32], PolicyPre<Host>>>,
    pub(super) http: reqwest::Client,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

impl Runtime {
    /// The process's runtime, created on first use.
    pub fn get() -> Result<&'static Runtime, String> {
        RUNTIME.get_or_init(|| Runtime::new().map_err(|e| format!("cannot start the policy runtime: {e:#}"))).as_ref().map_err(Clone::clone)
    }

    fn new() -> wasmtime::Result<Runtime> {
        let engine = Engine::new(&config())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        GatewayPolicy::add_to_linker::<Host, wasmtime::component::HasSelf<Host>>(&mut linker, |h| h)?;
        let weak = engine.weak();
        std::thread::Builder::new().name("policy-epoch".into()).spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Runtime { engine, linker, slots: Arc::new(Semaphore::new(SLOTS as usize)), compiled: Mutex::new(HashMap::new()), http })
    }

    /// Compiles a component (or finds it compiled) and links it. Slow: keep it off the request
    /// path. The cache is keyed by SHA-256, so no two components can share an entry.
    pub fn prepare(&self, bytes: &[u8]) -> Result<PolicyPre<Host>, String> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(bytes).into();
        if let Some(pre) = self.compiled.lock().expect("cache lock").get(&key) {
            return Ok(pre.clone());
        }
        let pre = self.link(super::compile::compile(&self.engine, bytes, Keep::OnDisk)?)?;
        self.compiled.lock().expect("cache lock").insert(key, pre.clone());
        Ok(pre)
    }

    /// Compiles and links a binding's own component (its pre-initialized snapshot): not kept
    /// in memory beyond the binding, and on disk only if `keep` says so.
    pub fn prepare_own(&self, bytes: &[u8], keep: Keep) -> Result<PolicyPre<Host>, String> {
        self.link(super::compile::compile(&self.engine, bytes, keep)?)
    }

    fn link(&self, component: Component) -> Result<PolicyPre<Host>, String> {
        // A component built for another version of the contract is named as such, before the
        // linker's own words about the first import or export that differs.
        if let Some(theirs) = contract_of(&self.engine, &component).filter(|v| !compatible(v, CONTRACT_VERSION)) {
            return Err(format!(
                "was built for the policy contract tollgate:policy@{theirs}; this gateway speaks tollgate:policy@{CONTRACT_VERSION}: rebuild it against this gateway's contract (`tollgate policy build`)"
            ));
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| format!("imports something the gateway does not provide: {e:#}"))?;
        PolicyPre::new(pre).map_err(|e| format!("does not export tollgate:policy/policy@{CONTRACT_VERSION}: {e:#}"))
    }
}

/// The version of the policy contract (`wit/policy.wit`) this gateway speaks.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// Whether a component built for contract `theirs` runs on a gateway speaking `ours`: the same
/// release series, as Cargo reads versions (`0.2.x` with `0.2.y`, `1.x` with `1.y`). Within a
/// series the contract only grows, so an older component links and a newer one links unless it
/// imports what this gateway lacks, which the linker then names.
fn compatible(theirs: &str, ours: &str) -> bool {
    fn series(v: &str) -> Option<(u64, Option<u64>)> {
        let mut parts = v.split(['.', '-', '+']).map(str::parse::<u64>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        Some((major, (major == 0).then_some(minor)))
    }
    series(theirs).is_some_and(|s| Some(s) == series(ours))
}

/// The contract version a component exports its `policy` interface for, if it exports one.
fn contract_of(engine: &Engine, component: &Component) -> Option<String> {
    let ty = component.component_type();
    let mut names = ty.exports(engine).map(|(name, _)| name.to_owned()).collect::<Vec<_>>();
    names.extend(ty.imports(engine).map(|(name, _)| name.to_owned()));
    names.iter().find_map(|n| n.strip_prefix("tollgate:policy/").and_then(|rest| rest.split_once('@')).map(|(_, v)| v.to_owned()))
}

/// Why an invocation produced no verdict. The chain applies the binding's failure mode.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fault {
    #[error("exceeded its time limit of {0} ms")]
    Timeout(u64),
    #[error("exceeded its memory limit of {0} MiB")]
    Memory(u32),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("refused its config: {0}")]
    Refused(String),
    #[error("returned an invalid verdict: {0}")]
    Invalid(String),
    #[error("could not start: {0}")]
    Start(String),
}

/// What a policy reached beyond its config and grants while it ran: whether the state its
/// `init` leaves may stand for every exchange (see `preinit`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Reach {
    /// It read a granted secret: fixed for the binding's life, but its value may now be in the
    /// instance's memory.
    pub secrets: bool,
    /// It read something that changes (state, the clock, the network, WASI).
    pub changing: Option<&'static str>,
}

impl Reach {
    pub fn changing(&mut self, what: &'static str) {
        self.changing.get_or_insert(what);
    }
}

/// The data of one store: the exchange it looks at, and the binding's grants.
pub struct Host {
    /// Built on a policy's first WASI call: the standard policies, and any built without WASI,
    /// never make one, so their steps never pay for it.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(super) view: View,
    pub(super) grants: Arc<Grants>,
    memory_limit: usize,
    memory_exceeded: bool,
    /// The most linear memory the instance has asked for: a reused instance past half its
    /// limit is retired, so a policy whose heap only grows (a JavaScript engine between
    /// collections) is replaced before it fails a request rather than after.
    memory_high: usize,
    pub(super) reach: Reach,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.reach.changing("WASI");
        WasiCtxView { ctx: self.wasi.get_or_insert_with(sealed_wasi), table: &mut self.table }
    }
}

impl ResourceLimiter for Host {
    fn memory_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        self.memory_high = self.memory_high.max(desired);
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }
    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A locked-down WASI: no files, sockets, environment, arguments or stdio. Rust's std links
/// these interfaces, so they exist, but each finds nothing behind it.
fn sealed_wasi() -> WasiCtx {
    WasiCtx::builder().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build()
}

/// One instance of one policy, for one step of one exchange; dropped after the step, or kept
/// for a later one when its binding reuses instances (`reuse.rs`).
///
/// A step's `timeout_ms` is wall time from the moment it asks for a slot: the wait for one,
/// instantiation, `init` and the hook, waits in host calls (outbound HTTP) included. The epoch
/// deadline stops guest code that spins; the step deadline stops a guest parked in a host call,
/// at that moment, by dropping the call (the instance is never used again).
pub struct Instance {
    store: Store<Host>,
    policy: GatewayPolicy,
    limits: PolicyLimits,
    deadline: tokio::time::Instant,
    _slot: OwnedSemaphorePermit,
}

impl Instance {
    /// Instantiates the component and, given a config, runs `init(config)`: the policy's hooks
    /// on success (none when the component starts initialized, a binding's snapshot).
    pub async fn start(
        rt: &Runtime,
        pre: &PolicyPre<Host>,
        config: Option<&String>,
        limits: PolicyLimits,
        grants: Arc<Grants>,
        view: View,
    ) -> Result<(Instance, Option<Hooks>), Fault> {
        let (deadline, slot, mut store) = Instance::begin(rt, &limits, grants, view).await?;
        let policy = match within(deadline, &limits, pre.instantiate_async(&mut store)).await? {
            Ok(p) => p,
            Err(e) => return Err(classify(&store, &limits, e)),
        };
        let mut inst = Instance { store, policy, limits, deadline, _slot: slot };
        let Some(config) = config else { return Ok((inst, None)) };
        let hooks = inst.init(config).await?;
        Ok((inst, Some(hooks)))
    }

    /// Instantiates the component, also handing back the instance itself, through which
    /// `preinit` reads its state. Slower than [`Instance::start`] (export lookups by name): for
    /// loading a binding, not for requests.
    pub(super) async fn start_raw(
        rt: &Runtime,
        pre: &PolicyPre<Host>,
        limits: PolicyLimits,
        grants: Arc<Grants>,
        view: View,
    ) -> Result<(Instance, wasmtime::component::Instance), Fault> {
        let (deadline, slot, mut store) = Instance::begin(rt, &limits, grants, view).await?;
        let raw = match within(deadline, &limits, pre.instance_pre().instantiate_async(&mut store)).await? {
            Ok(raw) => raw,
            Err(e) => return Err(classify(&store, &limits, e)),
        };
        let policy = GatewayPolicy::new(&mut store, &raw).map_err(|e| classify(&store, &limits, e))?;
        Ok((Instance { store, policy, limits, deadline, _slot: slot }, raw))
    }

    /// The step's deadline, a pool slot (waited for by that deadline), and a store bounded by the binding's limits.
    async fn begin(
        rt: &Runtime,
        limits: &PolicyLimits,
        grants: Arc<Grants>,
        view: View,
    ) -> Result<(tokio::time::Instant, OwnedSemaphorePermit, Store<Host>), Fault> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(limits.timeout_ms);
        let slot = within(deadline, limits, rt.slots.clone().acquire_owned()).await?.map_err(|_| Fault::Start("the runtime is shutting down".into()))?;
        Ok((deadline, slot, store(rt, limits, grants, view)))
    }

    /// Readies an instance a finished step left for the next one: its own deadline, a fresh
    /// epoch deadline, and the new step's view. What the last step left in its memory stays.
    pub(super) fn renew(&mut self, view: View) {
        self.deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(self.limits.timeout_ms);
        self.store.set_epoch_deadline(self.limits.timeout_ms);
        let host = self.store.data_mut();
        host.view = view;
        host.reach = Reach::default();
    }

    /// Whether the instance may serve another step: its step held no resource open and
    /// stayed within its memory. It keeps `view` while idle instead of the exchange it saw.
    pub(super) fn retire(&mut self, view: View) -> bool {
        let host = self.store.data_mut();
        host.view = view;
        host.table.is_empty() && !host.memory_exceeded && host.memory_high <= host.memory_limit / 2
    }

    /// The step's deadline; `preinit` runs its snapshot by it.
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        self.deadline
    }

    /// The instance's store, whose state `preinit` reads after `init`.
    pub(super) fn store_mut(&mut self) -> &mut Store<Host> {
        &mut self.store
    }

    /// `init(config)`, by the step's deadline.
    pub(super) async fn init(&mut self, config: &String) -> Result<Hooks, Fault> {
        let init = self.policy.tollgate_policy_policy().call_init(&mut self.store, config);
        match within(self.deadline, &self.limits, init).await? {
            Ok(Ok(h)) => Ok(h),
            Ok(Err(msg)) => Err(Fault::Refused(msg)),
            Err(e) => Err(self.fault(e)),
        }
    }

    pub fn view_mut(&mut self) -> &mut View {
        &mut self.store.data_mut().view
    }

    pub async fn on_request(&mut self) -> Result<Verdict, Fault> {
        let call = self.policy.tollgate_policy_policy().call_on_request(&mut self.store, handle());
        let r = within(self.deadline, &self.limits, call).await?;
        self.verdict(r)
    }

    pub async fn on_response(&mut self) -> Result<Verdict, Fault> {
        let call = self.policy.tollgate_policy_policy().call_on_response(&mut self.store, handle());
        let r = within(self.deadline, &self.limits, call).await?;
        self.verdict(r)
    }

    pub async fn on_message(&mut self, message: &String) -> Result<Passage, Fault> {
        let call = self.policy.tollgate_policy_policy().call_on_message(&mut self.store, handle(), message);
        let r = within(self.deadline, &self.limits, call).await?;
        let v = r.map_err(|e| self.fault(e))?;
        bindings::passage(v).map_err(Fault::Invalid)
    }

    pub async fn visible(&mut self, tool: &str) -> Result<bool, Fault> {
        let call = self.policy.tollgate_policy_policy().call_visible(&mut self.store, handle(), tool);
        let r = within(self.deadline, &self.limits, call).await?;
        r.map_err(|e| self.fault(e))
    }

    fn verdict(&self, r: wasmtime::Result<bindings::WitVerdict>) -> Result<Verdict, Fault> {
        let v = r.map_err(|e| self.fault(e))?;
        bindings::verdict(v).map_err(Fault::Invalid)
    }

    fn fault(&self, e: wasmtime::Error) -> Fault {
        classify(&self.store, &self.limits, e)
    }
}

/// A store for one instance of a binding, bounded by its limits.
fn store(rt: &Runtime, limits: &PolicyLimits, grants: Arc<Grants>, view: View) -> Store<Host> {
    let host = Host {
        wasi: None,
        table: ResourceTable::new(),
        view,
        grants,
        memory_limit: (limits.memory_mb as usize) << 20,
        memory_high: 0,
        memory_exceeded: false,
        reach: Reach::default(),
    };
    let mut store = Store::new(&rt.engine, host);
    store.limiter(|h| h);
    store.set_epoch_deadline(limits.timeout_ms);
    store.epoch_deadline_trap();
    store
}

/// Runs one part of a step by the step's deadline; past it, the part is dropped where it stands.
pub(super) async fn within<T>(deadline: tokio::time::Instant, limits: &PolicyLimits, part: impl std::future::Future<Output = T>) -> Result<T, Fault> {
    tokio::time::timeout_at(deadline, part).await.map_err(|_| Fault::Timeout(limits.timeout_ms))
}

fn handle() -> Resource<ExchangeRep> {
    Resource::new_borrow(0)
}

fn classify(store: &Store<Host>, limits: &PolicyLimits, e: wasmtime::Error) -> Fault {
    if store.data().memory_exceeded {
        return Fault::Memory(limits.memory_mb);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Timeout(limits.timeout_ms),
        Some(t) => Fault::Trap(t.to_string()),
        None => Fault::Trap(format!("{e}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_contract_version_is_the_wit_package_s() {
        let wit = include_str!("../../../wit/policy.wit");
        assert!(wit.starts_with(&format!("package tollgate:policy@{};", super::CONTRACT_VERSION)), "wit/policy.wit and CONTRACT_VERSION disagree");
    }

    #[test]
    fn components_of_the_same_series_are_compatible() {
        use super::compatible;
        assert!(compatible("0.2.0", "0.2.0"));
        assert!(compatible("0.2.1", "0.2.0"));
        assert!(compatible("0.2.0", "0.2.3"));
        assert!(!compatible("0.1.0", "0.2.0"));
        assert!(!compatible("0.3.0", "0.2.0"));
        assert!(compatible("1.4.0", "1.0.2"));
        assert!(!compatible("2.0.0", "1.9.0"));
        assert!(!compatible("garbage", "0.2.0"));
    }
}
