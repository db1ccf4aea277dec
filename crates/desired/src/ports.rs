//! Ports of every component (SPEC 3.1, 3.4), and [`NamedPort`]: a port as
//! Services and containers declare it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerPort, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A Service or container port with its Istio protocol prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    /// `tcp-…`, `tls-…`, `http-…` or `https-…`; at most 15 characters.
    pub name: &'static str,
    pub port: i32,
    /// `tcp`, `tls`, `http` or `https`.
    pub app_protocol: &'static str,
}

/// Shorthand for a port with its protocol prefix and appProtocol.
pub const fn port(name: &'static str, port: i32, app_protocol: &'static str) -> NamedPort {
    NamedPort { name, port, app_protocol }
}

impl NamedPort {
    /// The Service port: the same number on the pod, TCP, with appProtocol
    /// (Istio reads the protocol from it or from the name's prefix).
    pub fn service_port(&self) -> ServicePort {
        ServicePort {
            name: Some(self.name.into()),
            port: self.port,
            target_port: Some(IntOrString::Int(self.port)),
            protocol: Some("TCP".into()),
            app_protocol: Some(self.app_protocol.into()),
            ..Default::default()
        }
    }

    /// The container port.
    pub fn container_port(&self) -> ContainerPort {
        ContainerPort {
            name: Some(self.name.into()),
            container_port: self.port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }
    }
}

/// Service ports, de-duplicated by port number (first name wins).
pub fn service_ports(ports: &[NamedPort]) -> Vec<ServicePort> {
    dedup(ports).map(NamedPort::service_port).collect()
}

/// Container ports, de-duplicated by port number (first name wins).
pub fn container_ports(ports: &[NamedPort]) -> Vec<ContainerPort> {
    dedup(ports).map(NamedPort::container_port).collect()
}

fn dedup(ports: &[NamedPort]) -> impl Iterator<Item = &NamedPort> {
    let mut seen = BTreeSet::new();
    ports.iter().filter(move |p| seen.insert(p.port))
}

pub const ZK_CLIENT: i32 = 2181;
pub const ZK_QUORUM: i32 = 2888;
pub const ZK_ELECTION: i32 = 3888;
pub const ZK_ADMIN: i32 = 8000;

pub const BOOKIE: i32 = 3181;
pub const BOOKIE_HTTP: i32 = 8000;

/// Broker and proxy ports, in-cluster (plaintext; mTLS by the mesh).
pub const PULSAR: i32 = 6650;
pub const HTTP: i32 = 8080;
pub const KAFKA: i32 = 9092;
pub const MQTT: i32 = 1883;
pub const AMQP: i32 = 5672;
/// MoP's and AoP's proxies (inside the broker) both default to 5682; keep
/// them apart.
pub const MQTT_PROXY: i32 = 5682;
pub const AMQP_PROXY: i32 = 5683;
/// In-cluster TLS ports of a broker whose own client speaks TLS
/// (`brokerClientTlsEnabled`): Pulsar's brokerServicePortTls and
/// webServicePortTls.
pub const PULSAR_TLS: i32 = 6651;
pub const HTTPS: i32 = 8443;

/// A proxy's TLS ports when its gateway passes TLS through (Pulsar's
/// servicePortTls and webServicePortTls).
pub const PROXY_PULSAR_TLS: i32 = 6651;
pub const PROXY_HTTPS: i32 = 8443;

/// Ports on the ingress gateway Service.
pub const GW_PULSAR: i32 = 6651;
pub const GW_HTTPS: i32 = 443;
/// The gateway pod's target port for 443.
pub const GW_HTTPS_TARGET: i32 = 8443;
pub const GW_KAFKA: i32 = 9093;
pub const GW_MQTT: i32 = 8883;
pub const GW_AMQP: i32 = 5671;

/// External-listener ports at the broker when TLS ends at the gateway
/// (SIMPLE): plaintext behind the gateway.
pub const EXT_PULSAR_PLAIN: i32 = 6652;
pub const EXT_KAFKA_PLAIN: i32 = 9094;
/// External-listener ports at the broker when TLS passes through the
/// gateway (PASSTHROUGH): the broker terminates TLS.
pub const EXT_PULSAR_TLS: i32 = 6653;
pub const EXT_HTTPS_TLS: i32 = 8443;
pub const EXT_KAFKA_TLS: i32 = 9095;
pub const EXT_MQTT_TLS: i32 = 8883;
/// MoP's proxy TLS port (`mqttProxyTlsPort`) when the gateway passes MQTT
/// TLS through to the proxy: MoP's default 5683 is AoP's proxy here and 5684
/// is MoP's PSK default.
pub const EXT_MQTT_PROXY_TLS: i32 = 5685;
