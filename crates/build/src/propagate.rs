//! Coordinator propagation (SPEC 1.7).
