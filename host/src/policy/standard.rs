//! The standard policies, shipped inside the binary and named in the config without a path.
//! `build.rs` builds them from `policies/` and writes the table included here.

static STANDARD: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/standard.rs"));

/// The component of the standard policy `name`, if there is one.
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    STANDARD.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// Names for the error message when a name matches nothing.
pub fn names() -> Vec<&'static str> {
    STANDARD.iter().map(|(n, _)| *n).collect()
}
