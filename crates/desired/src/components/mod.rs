//! Workloads and their plumbing, per component (SPEC 3.1): StatefulSet or
//! Deployment, Services, ConfigMap, PodDisruptionBudget, ServiceAccount.

pub mod bookkeeper;
pub mod broker;
pub mod pod;
pub mod proxy;
pub mod toolset;
pub mod zookeeper;
