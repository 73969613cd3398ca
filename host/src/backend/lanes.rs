//! Connections for sessions' GET streams to an HTTP/2 backend. A GET stream is held for the
//! whole session, and an HTTP/2 connection carries only so many streams at once (the
//! server's `MAX_CONCURRENT_STREAMS`, commonly 100 to 250): past it, new streams wait, and
//! a connection full of idle GET streams would starve every request behind it. So GET
//! streams go on lanes, each a client with a connection of its own and at most
//! [`STREAMS_PER_LANE`] streams, and requests keep the backend's main client to themselves.
//! Over HTTP/1.1 every stream has its connection anyway, and there is a single lane.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::mcp::error::GatewayError;

/// Streams held on one connection: RFC 9113 advises servers to allow at least 100.
pub const STREAMS_PER_LANE: usize = 100;

pub struct Lanes {
    /// Whether streams share connections (HTTP/2 may be spoken); otherwise one lane serves all.
    shared: bool,
    lanes: Mutex<Vec<Lane>>,
}

#[derive(Clone)]
struct Lane {
    client: reqwest::Client,
    held: Arc<AtomicUsize>,
}

/// A place on a lane, given back when the stream's task ends.
pub struct Held {
    pub client: reqwest::Client,
    held: Arc<AtomicUsize>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lanes {
    /// `main` serves as the one lane when streams do not share connections.
    pub fn new(shared: bool, main: reqwest::Client) -> Lanes {
        let lanes = if shared { Vec::new() } else { vec![Lane { client: main, held: Arc::default() }] };
        Lanes { shared, lanes: Mutex::new(lanes) }
    }

    /// A lane with room for one more stream, opened with a client from `build` if every lane is full.
    pub fn take(&self, build: impl FnOnce() -> Result<reqwest::Client, GatewayError>) -> Result<Held, GatewayError> {
        let mut lanes = self.lanes.lock().expect("lanes lock");
        let room = lanes.iter().find(|l| !self.shared || l.held.load(Ordering::Acquire) < STREAMS_PER_LANE).cloned();
        let lane = match room {
            Some(l) => l,
            None => {
                let l = Lane { client: build()?, held: Arc::default() };
                lanes.push(l.clone());
                l
            }
        };
        lane.held.fetch_add(1, Ordering::AcqRel);
        Ok(Held { client: lane.client, held: lane.held })
    }

    /// Streams held now, and the lanes they are on.
    #[cfg(test)]
    pub fn load(&self) -> (usize, usize) {
        let lanes = self.lanes.lock().expect("lanes lock");
        (lanes.iter().map(|l| l.held.load(Ordering::Acquire)).sum(), lanes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(shared: bool) -> Lanes {
        Lanes::new(shared, reqwest::Client::new())
    }

    fn take(l: &Lanes) -> Held {
        l.take(|| Ok(reqwest::Client::new())).unwrap()
    }

    #[test]
    fn shared_lanes_fill_up_to_their_budget_and_free_places_are_taken_again() {
        let l = lanes(true);
        let mut held: Vec<Held> = (0..STREAMS_PER_LANE * 2 + 1).map(|_| take(&l)).collect();
        assert_eq!(l.load(), (STREAMS_PER_LANE * 2 + 1, 3));
        // Streams ending on the first lane make room there before a fourth lane is opened.
        held.drain(..10);
        assert_eq!(l.load(), (STREAMS_PER_LANE * 2 - 9, 3));
        for _ in 0..10 {
            held.push(take(&l));
        }
        assert_eq!(l.load(), (STREAMS_PER_LANE * 2 + 1, 3));
    }

    #[test]
    fn unshared_streams_all_use_the_main_client() {
        let l = lanes(false);
        let held: Vec<Held> = (0..STREAMS_PER_LANE * 3).map(|_| take(&l)).collect();
        assert_eq!(l.load(), (STREAMS_PER_LANE * 3, 1));
        drop(held);
        assert_eq!(l.load(), (0, 1));
    }
}
