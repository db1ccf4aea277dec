//! The offline render pipeline.
