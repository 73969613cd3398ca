//! What the standard policies share, kept in plain Rust so it is tested natively:
//! who the caller is ([`client_ip`], [`facts`]), how counters and caches are keyed ([`key`]),
//! durations in config ([`duration`]) and tool-name patterns ([`pattern`]).

pub mod client_ip;
pub mod duration;
pub mod facts;
pub mod key;
pub mod pattern;

pub use duration::Duration;
pub use facts::Facts;
pub use key::{KeyPart, Keyer};
pub use pattern::Patterns;
