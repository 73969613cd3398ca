//! The standard policies end to end (being written).
