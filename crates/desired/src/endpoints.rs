//! The service URLs a broker's status shows (SPEC 2): in-cluster, through
//! the gateway, and one host per broker. Status and the doctor read them
//! from here; the gateway objects are built from the same listeners and
//! hosts tables, so what is shown is what is routed.

use kube::ResourceExt;
use magnetar_api::PulsarBroker;
use magnetar_api::status::{ClusterEndpoints, ExternalEndpoints, ServiceEndpoints};

use crate::listeners::BrokerListeners;
use crate::names::{self, Component};
use crate::ports;

/// Service URLs of a broker (SPEC 2). External URLs only when the gateway
/// objects exist (a gateway, an advertised domain and Istio installed).
pub fn broker_endpoints(
    broker: &PulsarBroker,
    replicas: i32,
    istio_available: bool,
    cluster_domain: &str,
) -> ServiceEndpoints {
    let name = broker.name_any();
    let ns = broker.namespace().unwrap_or_default();
    let host = names::service_host(&Component::Broker.object_name(&name), &ns, cluster_domain);
    let cluster = ClusterEndpoints {
        web_service_url: format!("http://{host}:{}", ports::HTTP),
        pulsar_service_url: format!("pulsar://{host}:{}", ports::PULSAR),
    };
    let listeners = BrokerListeners::of(broker);
    let (external, brokers) = match listeners.external.as_ref().filter(|_| istio_available) {
        Some(ext) => {
            let main = &ext.hosts.main;
            let external = ExternalEndpoints {
                web_service_url: format!("https://{main}"),
                pulsar_service_url: format!("pulsar+ssl://{main}:{}", ports::GW_PULSAR),
                kafka_bootstrap_servers: listeners.kop.then(|| format!("{main}:{}", ports::GW_KAFKA)),
                mqtt_service_url: listeners.mop.then(|| format!("mqtts://{main}:{}", ports::GW_MQTT)),
                amqp_service_url: listeners.aop.then(|| format!("amqps://{main}:{}", ports::GW_AMQP)),
            };
            (Some(external), ext.hosts.hosts(replicas))
        }
        None => (None, Vec::new()),
    };
    ServiceEndpoints { cluster, external, brokers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broker_endpoints_follow_the_spec() {
        let b: PulsarBroker = serde_json::from_value(json!({
            "apiVersion": "pulsar.streamnative.io/v1alpha1", "kind": "PulsarBroker",
            "metadata": {"name": "private-cloud", "namespace": "pulsar"},
            "spec": {"zkServers": "zk:2181", "replicas": 2,
                "config": {"advertisedDomain": "pulsar.example.com", "serviceURLGenerationPolicy": "OrdinalPrefix",
                    "protocolHandlers": {"kop": {"enabled": true}, "mop": {"enabled": true}}},
                "istio": {"enabled": true, "gateway": {"tls": {"certSecretName": "c"}}}}
        }))
        .unwrap();
        let e = broker_endpoints(&b, 2, true, "cluster.local");
        assert_eq!(e.cluster.web_service_url, "http://private-cloud-broker.pulsar.svc.cluster.local:8080");
        assert_eq!(e.cluster.pulsar_service_url, "pulsar://private-cloud-broker.pulsar.svc.cluster.local:6650");
        let x = e.external.unwrap();
        assert_eq!(x.web_service_url, "https://pulsar.example.com");
        assert_eq!(x.pulsar_service_url, "pulsar+ssl://pulsar.example.com:6651");
        assert_eq!(x.kafka_bootstrap_servers.as_deref(), Some("pulsar.example.com:9093"));
        assert_eq!(x.mqtt_service_url.as_deref(), Some("mqtts://pulsar.example.com:8883"));
        assert_eq!(x.amqp_service_url, None);
        assert_eq!(e.brokers, ["pb0-pulsar.example.com", "pb1-pulsar.example.com"]);
        let e = broker_endpoints(&b, 2, false, "cluster.local");
        assert!(e.external.is_none() && e.brokers.is_empty());
    }
}
