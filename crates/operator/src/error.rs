//! A reconcile failure.

/// A reconcile failure (retried with per-object back-off).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("applying {object}: {source}")]
    Apply {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {object}: {source}")]
    Delete {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("propagating the coordinator's settings to {object}: {source}")]
    Propagate {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot apply {1} ({0}): not a kind the operator manages")]
    UnknownKind(String, String),
    #[error("updating status: {0}")]
    Status(#[source] kube::Error),
    #[error("checking the spec against the cluster: {0}")]
    Check(#[source] kube::Error),
    #[error("serializing: {0}")]
    Json(#[from] serde_json::Error),
}
