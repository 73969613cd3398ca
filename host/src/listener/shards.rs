//! The threads that run client connections. Each is a single-threaded runtime, and a
//! connection stays on the one it was given, with every task it starts: its requests, the
//! backend connections they open, the readers of their answers. Those tasks wake one another
//! on one thread. In a work-stealing pool they would wake idle workers on other threads to
//! run a few microseconds of work each, and on a small machine that costs more than the work:
//! measured with `loadgen` at concurrency 1, the pool's two workers took 237 µs of CPU per
//! proxied call where one thread took 147.
//!
//! A new connection goes to the shard with the fewest open, so long-lived streams spread out.
//! The price is that one busy connection delays the others on its shard rather than moving
//! them elsewhere, which is why a request's heavy work (compiling a policy, reading files)
//! already runs on the blocking pool.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

pub struct Shards {
    shards: Vec<Shard>,
}

struct Shard {
    handle: Handle,
    open: Arc<AtomicUsize>,
    /// Dropped with the shard: its thread then returns, and its runtime drops what it still runs.
    _stop: oneshot::Sender<()>,
}

/// Counts a connection open on its shard while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shards {
    /// Starts `n` threads (at least one), each running its own runtime until this is dropped.
    pub fn start(n: usize) -> std::io::Result<Shards> {
        let mut shards = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let rt = Builder::new_current_thread().enable_all().build()?;
            let handle = rt.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new().name(format!("tollgate-conn-{i}")).spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
            shards.push(Shard { handle, open: Arc::default(), _stop: stop });
        }
        Ok(Shards { shards })
    }

    /// Runs a connection's task on the shard with the fewest connections open.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        let shard = self.shards.iter().min_by_key(|s| s.open.load(Ordering::Acquire)).expect("at least one shard");
        shard.open.fetch_add(1, Ordering::AcqRel);
        let open = Open(shard.open.clone());
        shard.handle.spawn(async move {
            let _open = open;
            connection.await;
        });
    }

    /// Connections open on each shard.
    #[cfg(test)]
    pub fn load(&self) -> Vec<usize> {
        self.shards.iter().map(|s| s.open.load(Ordering::Acquire)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_loaded_shard_and_stay_on_its_thread() {
        let shards = Shards::start(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut releases = Vec::new();
        for _ in 0..4 {
            let (release, released) = oneshot::channel::<()>();
            releases.push(release);
            let tx = tx.clone();
            shards.spawn(async move {
                let before = std::thread::current().id();
                // A task it starts runs on the same thread.
                let inner = tokio::spawn(async { std::thread::current().id() }).await.unwrap();
                tx.send((before, inner)).unwrap();
                let _ = released.await;
            });
        }
        let seen: Vec<_> = (0..4).map(|_| rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()).collect();
        assert!(seen.iter().all(|(a, b)| a == b), "{seen:?}");
        assert_eq!(shards.load(), vec![2, 2]);
        drop(releases.remove(0));
        drop(releases.remove(0));
        settle(&shards, 2).await;
    }

    /// Waits until `n` connections remain open across the shards.
    async fn settle(shards: &Shards, n: usize) {
        for _ in 0..200 {
            if shards.load().iter().sum::<usize>() == n {
                return;
            }
            tokio::task::yield_now().await;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("still open: {:?}", shards.load());
    }
}
