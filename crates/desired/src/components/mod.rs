//! Workloads and their plumbing, per component (SPEC 3.1): StatefulSet or
//! Deployment, Services, ConfigMap, PodDisruptionBudget, ServiceAccount.
//!
//! One module per component, and the parts they share: the configuration
//! files and start-up script fragments ([`config_files`]), the JVM's memory
//! ([`jvm`]), the pod template and workload ([`workload`]), and the objects
//! around it ([`objects`]).

pub mod bookkeeper;
pub mod broker;
pub mod config_files;
pub mod jvm;
pub mod monitoring;
pub mod objects;
pub mod proxy;
pub mod pulsar_auth;
pub mod toolset;
pub mod workload;
pub mod zookeeper;

#[cfg(test)]
pub(crate) mod test_util;
