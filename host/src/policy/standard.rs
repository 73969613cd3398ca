//! The standard policies, shipped inside the binary and named in the config without a path.

/// The component of the standard policy `name`, if there is one.
pub fn lookup(name: &str) -> Option<&'static [u8]> {
    let _ = name;
    None
}

/// Names for the error message when a name matches nothing.
pub fn names() -> &'static [&'static str] {
    &[]
}
