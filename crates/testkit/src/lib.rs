//! Test doubles (placeholder; see crate description).
