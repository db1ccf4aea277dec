//! Data shared by the testenv tests.
pub mod protocol_keys;
