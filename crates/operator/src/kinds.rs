//! The kinds the operator works with, from their one home each: the five it
//! reconciles (`magnetar_api::kinds`) and the kinds of the objects it
//! applies (`magnetar_desired::kinds`).

pub use magnetar_api::MainKind;
pub use magnetar_desired::kinds::{
    CORE, ChildKind, GATEWAY_API, GATEWAY_API_KINDS, ISTIO, MONITORING, MONITORING_KINDS, NETWORKING_ISTIO, Phase,
    SECURITY_ISTIO, all, child, is_istio_group,
};
