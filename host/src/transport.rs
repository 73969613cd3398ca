//! Client-facing transports. Each turns HTTP into session calls and session streams back
//! into HTTP; none of them knows what kind of backend sits behind the session.

pub mod admission;
pub mod legacy;
pub mod observe;
pub mod respond;
pub mod stateless;
pub mod streamable;
