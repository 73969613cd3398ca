//! Policy state in Redis, shared by every replica: each operation one command or one script
//! (run by digest), so each is atomic in Redis and costs one round trip.
//!
//! redis-rs's `ConnectionManager` multiplexes callers onto one connection (pipelining beats a
//! pool for small commands) and reconnects by itself. Each thread that asks gets its own,
//! driven on that thread's runtime: a request's state calls never hop to another thread and
//! back, which cost more CPU than the command itself. Each operation is bounded by
//! `state.timeout_ms`; a watchdog pings once a second so an outage, and the end of one, is
//! seen without traffic: logged once each way, counted, and shown on `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use super::{StateError, StateStore};
use crate::config::StateConfig;
use crate::telemetry::metrics::{STATE_ERRORS, STATE_UP};

/// `incr`: the TTL applies only when the counter is created, as in the embedded store.
const INCR: &str = r"
local created = redis.call('EXISTS', KEYS[1]) == 0
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
";

/// `cas`: ARGV[1] is 1 when a value is expected (ARGV[2]), 0 when absence is.
const CAS: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4]) else redis.call('SET', KEYS[1], ARGV[3]) end
return 1
";

/// How often the watchdog asks.
const WATCH_EVERY: Duration = Duration::from_secs(1);

pub struct RedisStore {
    client: redis::Client,
    manager: redis::aio::ConnectionManagerConfig,
    /// One connection per thread that uses the store, made on first use.
    conns: thread_local::ThreadLocal<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    incr: Script,
    cas: Script,
    up: AtomicBool,
    /// What the last failure said, while the store is out.
    cause: Mutex<Option<String>>,
}

impl RedisStore {
    /// Parses the URL and starts the watchdog; the first connection is made when first needed.
    pub fn open(config: &StateConfig) -> Result<RedisStore, String> {
        let url = config.redis.reveal().map_err(|e| format!("state.redis: {e}"))?;
        // The message never repeats the URL: it may carry a password.
        let client = redis::Client::open(url.as_str()).map_err(|_| "state.redis: not a Redis URL this gateway can use".to_owned())?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1).max(timeout)))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(RedisStore {
            client,
            manager,
            conns: thread_local::ThreadLocal::new(),
            prefix: config.prefix.clone(),
            timeout,
            incr: Script::new(INCR),
            cas: Script::new(CAS),
            up: AtomicBool::new(true),
            cause: Mutex::new(None),
        })
    }

    /// Pings once a second for as long as the store is in use, so `/readyz` and the log know
    /// whether Redis answers before any request asks it.
    pub fn watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WATCH_EVERY).await;
                let Some(store) = weak.upgrade() else { return };
                let _ = store.send::<String>(redis::cmd("PING")).await;
            }
        });
    }

    /// Why the store is out, if it is.
    pub fn outage(&self) -> Option<String> {
        if self.up.load(Ordering::Relaxed) {
            return None;
        }
        let cause = self.cause.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default();
        Some(format!("policy state (redis): {cause}"))
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// This thread's connection; must be called in a tokio runtime, which drives it.
    fn conn(&self) -> Result<ConnectionManager, StateError> {
        self.conns
            .get_or_try(|| ConnectionManager::new_lazy_with_config(self.client.clone(), self.manager.clone()))
            .cloned()
            .map_err(|e| StateError::Unavailable(e.to_string()))
    }

    /// One command on this thread's connection.
    fn send<'a, T: redis::FromRedisValue + Send + 'a>(&'a self, cmd: redis::Cmd) -> BoxFuture<'a, Result<T, StateError>> {
        match self.conn() {
            Ok(mut conn) => Box::pin(self.run(async move { cmd.query_async(&mut conn).await })),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    /// One script, by digest (loaded first if Redis does not know it), on this thread's connection.
    fn invoke<'a, T: redis::FromRedisValue + Send + 'a>(&'a self, call: redis::ScriptInvocation<'a>) -> BoxFuture<'a, Result<T, StateError>> {
        match self.conn() {
            Ok(mut conn) => Box::pin(self.run(async move { call.invoke_async(&mut conn).await })),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn bounded<T>(&self, op: impl Future<Output = Result<T, RedisError>>) -> Result<T, StateError> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if refused(&e) => Err(StateError::Refused(e.to_string())),
            Ok(Err(e)) => Err(StateError::Unavailable(e.to_string())),
            Err(_) => Err(StateError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Notes whether the store answered: an outage and its end are logged once each.
    fn seen<T>(&self, r: Result<T, StateError>) -> Result<T, StateError> {
        match &r {
            Ok(_) | Err(StateError::Refused(_)) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    STATE_UP.set(1);
                    tracing::info!("policy state store (redis) answers again");
                }
            }
            Err(StateError::Unavailable(cause)) => {
                STATE_ERRORS.inc();
                *self.cause.lock().unwrap_or_else(|p| p.into_inner()) = Some(cause.clone());
                if self.up.swap(false, Ordering::Relaxed) {
                    STATE_UP.set(0);
                    tracing::error!(error = %cause, "policy state store (redis) is unreachable: policies are told, and refuse or fall back as their bindings say");
                }
            }
        }
        r
    }

    async fn run<T>(&self, op: impl Future<Output = Result<T, RedisError>>) -> Result<T, StateError> {
        self.seen(self.bounded(op).await)
    }
}

/// The server said no to this command: asking again elsewhere would not help.
fn refused(e: &RedisError) -> bool {
    matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ResponseError) | ErrorKind::UnexpectedReturnType | ErrorKind::Parse)
}

/// Milliseconds for a TTL; Redis refuses 0, which here means "already over".
fn ms(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| (t.as_millis() as u64).max(1))
}

impl StateStore for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StateError>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        self.send(cmd)
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<(), StateError>> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if ttl.is_some() {
            cmd.arg("PX").arg(ms(ttl));
        }
        self.send(cmd)
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64, ttl: Option<Duration>) -> BoxFuture<'a, Result<i64, StateError>> {
        let mut call = self.incr.key(self.key(key));
        call.arg(delta).arg(ms(ttl));
        self.invoke(call)
    }

    fn cas<'a>(&'a self, key: &'a str, expected: Option<Vec<u8>>, new: Vec<u8>, ttl: Option<Duration>) -> BoxFuture<'a, Result<bool, StateError>> {
        let mut call = self.cas.key(self.key(key));
        call.arg(u8::from(expected.is_some())).arg(expected.unwrap_or_default()).arg(new).arg(ms(ttl));
        Box::pin(async move { self.invoke::<i64>(call).await.map(|n| n == 1) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        Box::pin(async move { self.send::<i64>(cmd).await.map(drop) })
    }
}

/// `set_unless`: ARGV[1] the value that stops the write, ARGV[2] the new value, ARGV[3] its TTL in ms.
const SET_UNLESS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

static SET_UNLESS_SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(SET_UNLESS));

/// Keys of the gateway's own (the session directory's), under the same prefix and bound, and
/// counted in the same outage as the policies' keys.
impl RedisStore {
    /// Writes `value` at `key` for `ttl`, unless the key holds `unless` now: false, and the
    /// key untouched, when it does. One script, so nothing comes between the check and the write.
    pub async fn set_unless(&self, key: &str, unless: &[u8], value: Vec<u8>, ttl: Duration) -> Result<bool, StateError> {
        let mut call = SET_UNLESS_SCRIPT.key(self.key(key));
        call.arg(unless).arg(value).arg(ms(Some(ttl)));
        self.invoke::<i64>(call).await.map(|n| n == 1)
    }
}
