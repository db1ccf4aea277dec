//! Which broker and proxy ports and listeners exist, and whether they are
//! reachable through a gateway (SPEC 3.4). The workload, the Services, the
//! Istio routing, the AuthorizationPolicy and the operator's prerequisite
//! checks all read this one table, so a protocol switched on or off, or a
//! gateway added, changes all of them together.

use kube::ResourceExt;
use magnetar_api::broker::{PodService, ServiceUrlGenerationPolicy};
use magnetar_api::common::OwnTls;
use magnetar_api::istio::{GatewaySpec, GatewayTlsMode};
use magnetar_api::{PulsarBroker, PulsarProxy};

use crate::hosts::{self, HostPattern};
use crate::ports::*;

use crate::ports::port as p;

/// A protocol a broker can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Pulsar,
    Http,
    Kafka,
    Mqtt,
    Amqp,
}

/// One row of SPEC 3.4 for a protocol that is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub protocol: Protocol,
    /// Port on the ingress gateway Service (6651, 443, 9093, 8883, 5671).
    pub gateway_port: i32,
    /// Port the gateway sends to at the broker (SIMPLE or PASSTHROUGH column).
    pub target: NamedPort,
    /// The gateway terminates TLS on this route: every route in SIMPLE
    /// mode, and AMQP in PASSTHROUGH mode too (AoP has no TLS listener).
    pub terminated: bool,
}

/// External access of a broker: a gateway and an advertised domain.
#[derive(Clone, Debug)]
pub struct External<'a> {
    pub gateway: &'a GatewaySpec,
    pub tls_mode: GatewayTlsMode,
    pub hosts: HostPattern,
}

/// The broker's protocols and, when external access is on, its gateway.
#[derive(Clone, Debug)]
pub struct BrokerListeners<'a> {
    pub kop: bool,
    pub mop: bool,
    pub aop: bool,
    /// MoP's / AoP's proxy runs in each broker (see [`handler_proxy`]).
    pub mop_proxy: bool,
    pub aop_proxy: bool,
    /// The broker's own client speaks TLS (`brokerClientTlsEnabled`), so
    /// the `internal` listener needs a `pulsar+ssl` URL and the broker its
    /// TLS ports (SPEC 6).
    pub internal_tls: bool,
    /// `spec.tls` when enabled: the brokers serve TLS with this Secret's
    /// certificate (which makes `internal_tls` true).
    pub own_tls: Option<&'a OwnTls>,
    pub external: Option<External<'a>>,
    /// The user's own Pulsar listeners (`spec.advertisedListeners`).
    pub advertised: Vec<Advertised<'a>>,
    /// `spec.networking.podService` when enabled: a Service per broker pod.
    pub pod_service: Option<&'a PodService>,
    /// `config.usePodIPAsAdvertisedAddress`: the in-cluster listeners
    /// advertise the pod's IP, not its DNS name.
    pub pod_ip: bool,
}

/// A listener of `spec.advertisedListeners` with the Pulsar protocol on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertised<'a> {
    pub name: &'a str,
    pub host_template: &'a str,
    /// The container port (`tcp-adv-<i>`), bound as `name:pulsar://0.0.0.0:port`.
    pub port: NamedPort,
    /// The port advertised to clients.
    pub advertised_port: i32,
}

/// Container port names of the advertised listeners, by position (the
/// schema allows ten; a port name has at most 15 characters, a listener
/// name up to 63).
const ADVERTISED_PORT_NAMES: [&str; 10] = [
    "tcp-adv-0",
    "tcp-adv-1",
    "tcp-adv-2",
    "tcp-adv-3",
    "tcp-adv-4",
    "tcp-adv-5",
    "tcp-adv-6",
    "tcp-adv-7",
    "tcp-adv-8",
    "tcp-adv-9",
];

/// The listeners of `spec.advertisedListeners` that serve Pulsar's protocol
/// on a container port (validation refuses the others, naming the field).
fn advertised(broker: &PulsarBroker) -> Vec<Advertised<'_>> {
    broker
        .spec
        .advertised_listeners
        .iter()
        .zip(ADVERTISED_PORT_NAMES)
        .filter_map(|(l, port_name)| {
            let pulsar = l.protocols.as_ref()?.pulsar.as_ref().filter(|p| p.enabled != Some(false))?;
            let container = pulsar.container_port?;
            Some(Advertised {
                name: &l.name,
                host_template: &l.host_template,
                port: p(port_name, container, "tcp"),
                advertised_port: pulsar.advertised_port.unwrap_or(container),
            })
        })
        .collect()
}

/// Whether a protocol handler's proxy runs: as the user says, and when
/// unset, whenever the broker has external access. A topic is owned by one
/// broker, MoP and AoP serve a topic only on its owner, and the gateway
/// spreads connections over all brokers; the proxy (in every broker) looks
/// the topic up and forwards to the owner (streamnative/mop
/// `PulsarServiceLookupHandler.findBroker`: a Pulsar lookup, then the
/// owner's `mqtt://` listener). Turning it on with external access rather
/// than with more than one replica keeps the broker configuration the same
/// when the brokers are scaled, so scaling rolls nothing; with one broker
/// the proxy forwards to its own broker. An explicit false with more than
/// one broker behind the gateway is refused by validation.
fn handler_proxy(enabled: bool, proxy: Option<bool>, external: bool) -> bool {
    enabled && proxy.unwrap_or(external)
}

/// `spec.tls` of a broker when enabled: the brokers serve TLS with its
/// Secret's certificate.
pub fn own_tls(broker: &PulsarBroker) -> Option<&OwnTls> {
    broker.spec.tls.as_ref().filter(|t| t.enabled == Some(true))
}

impl<'a> BrokerListeners<'a> {
    pub fn of(broker: &'a PulsarBroker) -> Self {
        let config = broker.spec.config.as_ref();
        let handlers = config.and_then(|c| c.protocol_handlers.as_ref());
        let on = |b: Option<bool>| b.unwrap_or(false);
        let kop = on(handlers.and_then(|h| h.kop.as_ref()).and_then(|k| k.enabled));
        let mop_spec = handlers.and_then(|h| h.mop.as_ref());
        let aop_spec = handlers.and_then(|h| h.aop.as_ref());
        let mop = on(mop_spec.and_then(|k| k.enabled));
        let aop = on(aop_spec.and_then(|k| k.enabled));
        let istio = broker.spec.istio.as_ref().filter(|i| i.enabled.unwrap_or(false));
        let domain = config.and_then(|c| c.advertised_domain.as_deref()).filter(|d| !d.is_empty());
        let external = match (istio.and_then(|i| i.gateway.as_ref()), domain) {
            (Some(gateway), Some(domain)) => {
                let policy = config.and_then(|c| c.service_url_generation_policy).unwrap_or_default();
                Some(External { gateway, tls_mode: gateway.tls_mode(), hosts: host_pattern(broker, policy, domain) })
            }
            _ => None,
        };
        let ext = external.is_some();
        let own_tls = own_tls(broker);
        let internal_tls = own_tls.is_some() || config.is_some_and(|c| broker_client_tls(&c.custom));
        BrokerListeners {
            kop,
            mop,
            aop,
            mop_proxy: handler_proxy(mop, mop_spec.and_then(|m| m.proxy_enabled), ext),
            aop_proxy: handler_proxy(aop, aop_spec.and_then(|a| a.proxy_enabled), ext),
            internal_tls,
            own_tls,
            external,
            advertised: advertised(broker),
            pod_service: broker
                .spec
                .networking
                .as_ref()
                .and_then(|n| n.pod_service.as_ref())
                .filter(|s| s.enabled != Some(false)),
            pod_ip: config.and_then(|c| c.use_pod_ip_as_advertised_address) == Some(true),
        }
    }

    /// Ports every broker serves inside the cluster (and declares on its
    /// container, its Services and the headless Service).
    pub fn internal_ports(&self) -> Vec<NamedPort> {
        let mut v = vec![p("tcp-pulsar", PULSAR, "tcp"), p("http-web", HTTP, "http")];
        if self.internal_tls {
            v.push(p("tls-pulsar", PULSAR_TLS, "tls"));
            v.push(p("https-web", HTTPS, "https"));
        }
        if self.kop {
            v.push(p("tcp-kafka", KAFKA, "tcp"));
        }
        if self.mop {
            v.push(p("tcp-mqtt", MQTT, "tcp"));
        }
        if self.aop {
            v.push(p("tcp-amqp", AMQP, "tcp"));
        }
        if self.mop_proxy {
            v.push(p("tcp-mqtt-proxy", MQTT_PROXY, "tcp"));
        }
        if self.aop_proxy {
            v.push(p("tcp-amqp-proxy", AMQP_PROXY, "tcp"));
        }
        v.extend(self.advertised.iter().map(|a| a.port.clone()));
        v
    }

    /// The gateway's routes for the protocols that are on; empty without
    /// external access.
    pub fn routes(&self) -> Vec<Route> {
        let Some(ext) = &self.external else { return vec![] };
        let simple = ext.tls_mode == GatewayTlsMode::Simple;
        let mut v = vec![
            Route {
                terminated: simple,
                protocol: Protocol::Pulsar,
                gateway_port: GW_PULSAR,
                target: if simple {
                    p("tcp-pulsar-ext", EXT_PULSAR_PLAIN, "tcp")
                } else {
                    p("tls-pulsar-ext", EXT_PULSAR_TLS, "tls")
                },
            },
            Route {
                terminated: simple,
                protocol: Protocol::Http,
                gateway_port: GW_HTTPS,
                target: if simple { p("http-web", HTTP, "http") } else { p("https-ext", EXT_HTTPS_TLS, "https") },
            },
        ];
        if self.kop {
            v.push(Route {
                terminated: simple,
                protocol: Protocol::Kafka,
                gateway_port: GW_KAFKA,
                target: if simple {
                    p("tcp-kafka-ext", EXT_KAFKA_PLAIN, "tcp")
                } else {
                    p("tls-kafka-ext", EXT_KAFKA_TLS, "tls")
                },
            });
        }
        // MQTT and AMQP go to the handler's proxy when it runs, which
        // forwards to the topic's owner (see `handler_proxy`).
        if self.mop {
            let target = match (simple, self.mop_proxy) {
                (true, true) => p("tcp-mqtt-proxy", MQTT_PROXY, "tcp"),
                (true, false) => p("tcp-mqtt", MQTT, "tcp"),
                (false, true) => p("tls-mqtt-proxy", EXT_MQTT_PROXY_TLS, "tls"),
                (false, false) => p("tls-mqtt", EXT_MQTT_TLS, "tls"),
            };
            v.push(Route { terminated: simple, protocol: Protocol::Mqtt, gateway_port: GW_MQTT, target });
        }
        if self.aop {
            v.push(Route {
                terminated: true,
                protocol: Protocol::Amqp,
                gateway_port: GW_AMQP,
                // AMQP TLS ends at the gateway in both modes (AoP has no
                // TLS listener): plaintext on to AoP's proxy or listener.
                target: self.amqp_plain_target(),
            });
        }
        v
    }

    /// Where plaintext AMQP from the gateway goes: AoP's proxy when it
    /// runs, else the broker's AMQP listener.
    pub fn amqp_plain_target(&self) -> NamedPort {
        if self.aop_proxy { p("tcp-amqp-proxy", AMQP_PROXY, "tcp") } else { p("tcp-amqp", AMQP, "tcp") }
    }

    /// External-listener ports (SPEC 3.5 "per broker Service"): the route
    /// targets that are not internal ports already.
    pub fn external_ports(&self) -> Vec<NamedPort> {
        let internal = self.internal_ports();
        self.routes().into_iter().map(|r| r.target).filter(|t| !internal.iter().any(|i| i.port == t.port)).collect()
    }

    /// Every port the broker container listens on.
    pub fn container_ports(&self) -> Vec<NamedPort> {
        let mut v = self.internal_ports();
        v.extend(self.external_ports());
        v
    }

    /// Whether each broker pod gets a Service of its own: the routes of
    /// external access point at them, and `networking.podService` asks.
    pub fn per_broker_services(&self) -> bool {
        self.external.is_some() || self.pod_service.is_some()
    }

    /// Ports of the per-broker Services: the route targets for external
    /// access, and with `networking.podService` every container port too
    /// (the Service keeps the first of each port number).
    pub fn per_broker_service_ports(&self) -> Vec<NamedPort> {
        let mut v: Vec<NamedPort> = self.routes().into_iter().map(|r| r.target).collect();
        if self.pod_service.is_some() {
            v.extend(self.container_ports());
        }
        v
    }
}

/// External access of a proxy: a gateway and the DNS names it serves.
#[derive(Clone, Debug)]
pub struct ProxyExternal<'a> {
    pub gateway: &'a GatewaySpec,
    /// `spec.dnsNames` without empty or repeated entries (Istio refuses an
    /// empty host).
    pub hosts: Vec<String>,
}

/// The proxy's ports and, when external access is on, its gateway.
#[derive(Clone, Debug)]
pub struct ProxyListeners<'a> {
    /// Istio enabled, a gateway and at least one DNS name.
    pub external: Option<ProxyExternal<'a>>,
    /// `config.kopProxy.enabled`: Kafka clients on 9092, in the cluster
    /// (or through the user's own load balancer, `kafkaAdvertisedListener`).
    pub kafka: bool,
    /// `config.tls` when enabled: the proxies serve TLS on 6651 and 8443
    /// with the user's certificate.
    pub own_tls: Option<ProxyTls<'a>>,
}

/// The proxies' own TLS, its Secret decided once: `config.tls`'s, else
/// `spec.certSecretName` (None when neither names one: refused by
/// validation).
#[derive(Clone, Copy, Debug)]
pub struct ProxyTls<'a> {
    pub cert_secret_name: Option<&'a str>,
    pub trust_certs: bool,
}

impl<'a> ProxyListeners<'a> {
    pub fn of(proxy: &'a PulsarProxy) -> Self {
        let mut hosts: Vec<String> = Vec::new();
        for h in proxy.spec.dns_names.iter().filter(|h| !h.is_empty()) {
            if !hosts.contains(h) {
                hosts.push(h.clone());
            }
        }
        let istio = proxy.spec.istio.as_ref().filter(|i| i.enabled.unwrap_or(false));
        let external = istio
            .and_then(|i| i.gateway.as_ref())
            .filter(|_| !hosts.is_empty())
            .map(|gateway| ProxyExternal { gateway, hosts });
        let kafka = proxy.spec.config.as_ref().and_then(|c| c.kop_proxy.as_ref()).and_then(|k| k.enabled);
        let own_tls = proxy.spec.config.as_ref().and_then(|c| c.tls.as_ref()).filter(|t| t.enabled == Some(true));
        let named = |s: Option<&'a String>| s.map(String::as_str).filter(|s| !s.is_empty());
        let own_tls = own_tls.map(|t| ProxyTls {
            cert_secret_name: named(t.cert_secret_name.as_ref()).or(named(proxy.spec.cert_secret_name.as_ref())),
            trust_certs: t.trust_certs_enabled == Some(true),
        });
        ProxyListeners { external, kafka: kafka.unwrap_or(false), own_tls }
    }

    /// The gateway, when external access is on.
    pub fn gateway(&self) -> Option<&'a GatewaySpec> {
        self.external.as_ref().map(|e| e.gateway)
    }

    /// The gateway passes TLS through: the proxy terminates it.
    pub fn passthrough(&self) -> Option<&'a GatewaySpec> {
        self.gateway().filter(|g| g.tls_mode() == GatewayTlsMode::Passthrough)
    }

    /// The gateway's routes; empty without external access. SIMPLE: the
    /// gateway terminates TLS and sends plaintext to the proxy's 6650 and
    /// 8080. PASSTHROUGH: the proxy itself serves TLS (with the gateway's
    /// certificate, or the user's through `config.custom` and
    /// `pod.secretRefs`) on Pulsar's standard TLS ports, 6651 and 8443.
    pub fn routes(&self) -> Vec<Route> {
        let Some(gw) = self.gateway() else { return vec![] };
        let (pulsar, web) = match gw.tls_mode() {
            GatewayTlsMode::Simple => (p("tcp-pulsar", PULSAR, "tcp"), p("http-web", HTTP, "http")),
            GatewayTlsMode::Passthrough => {
                (p("tls-pulsar", PROXY_PULSAR_TLS, "tls"), p("https-web", PROXY_HTTPS, "https"))
            }
        };
        let terminated = gw.tls_mode() == GatewayTlsMode::Simple;
        vec![
            Route { protocol: Protocol::Pulsar, gateway_port: GW_PULSAR, target: pulsar, terminated },
            Route { protocol: Protocol::Http, gateway_port: GW_HTTPS, target: web, terminated },
        ]
    }

    /// Whether the proxies serve TLS on 6651 and 8443: with their own
    /// certificate (`config.tls`), or the gateway's in PASSTHROUGH mode.
    pub fn serves_tls(&self) -> bool {
        self.own_tls.is_some() || self.passthrough().is_some()
    }

    /// Every port the proxy listens on (its container and Service): 6650
    /// and 8080, Kafka's 9092 with the Kafka proxy extension, plus the TLS
    /// ports when it serves TLS itself.
    pub fn ports(&self) -> Vec<NamedPort> {
        let mut v = vec![p("tcp-pulsar", PULSAR, "tcp"), p("http-web", HTTP, "http")];
        if self.kafka {
            v.push(p("tcp-kafka", KAFKA, "tcp"));
        }
        if self.serves_tls() {
            v.extend([p("tls-pulsar", PROXY_PULSAR_TLS, "tls"), p("https-web", PROXY_HTTPS, "https")]);
        }
        v
    }
}

/// Whether `config.custom` turns on TLS for the broker's own client, as a
/// broker.conf entry or as its `PULSAR_PREFIX_` variable. Pulsar reads
/// booleans case-insensitively. That client (lookups between brokers,
/// system topics, the admin client) then connects to the `pulsar+ssl` URL
/// of the `internal` listener, and finds none unless the broker has one:
/// with TLS-only authentication it cannot connect at all.
pub fn broker_client_tls(custom: &std::collections::BTreeMap<String, String>) -> bool {
    ["brokerClientTlsEnabled", "PULSAR_PREFIX_brokerClientTlsEnabled"]
        .iter()
        .filter_map(|k| custom.get(*k))
        .any(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The per-broker host pattern of a broker, from its spec, namespace and UID.
pub fn host_pattern(broker: &PulsarBroker, policy: ServiceUrlGenerationPolicy, domain: &str) -> HostPattern {
    hosts::pattern(
        policy,
        broker.namespace().as_deref().unwrap_or_default(),
        &broker.name_any(),
        broker.metadata.uid.as_deref(),
        domain,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(yaml: &str) -> PulsarBroker {
        serde_norway::from_str(yaml).unwrap()
    }

    const BASE: &str =
        "apiVersion: pulsar.streamnative.io/v1alpha1\nkind: PulsarBroker\nmetadata: {name: b, namespace: ns}\n";

    #[test]
    fn simple_gateway_routes_to_plaintext_external_ports() {
        let b = broker(&format!(
            "{BASE}spec:\n  zkServers: zk:2181\n  config: {{advertisedDomain: d.io, protocolHandlers: {{kop: {{enabled: true}}}}}}\n  istio: {{enabled: true, gateway: {{tls: {{certSecretName: c}}}}}}\n"
        ));
        let l = BrokerListeners::of(&b);
        let r: Vec<(i32, i32)> = l.routes().iter().map(|r| (r.gateway_port, r.target.port)).collect();
        assert_eq!(r, [(6651, 6652), (443, 8080), (9093, 9094)]);
        let ext: Vec<i32> = l.external_ports().iter().map(|p| p.port).collect();
        assert_eq!(ext, [6652, 9094]);
    }

    #[test]
    fn passthrough_routes_to_tls_ports_at_the_broker() {
        let b = broker(&format!(
            "{BASE}spec:\n  zkServers: zk:2181\n  config: {{advertisedDomain: d.io, protocolHandlers: {{mop: {{enabled: true}}, aop: {{enabled: true}}}}}}\n  istio: {{enabled: true, gateway: {{tls: {{mode: passthrough}}}}}}\n"
        ));
        let r: Vec<(i32, i32)> =
            BrokerListeners::of(&b).routes().iter().map(|r| (r.gateway_port, r.target.port)).collect();
        // MQTT TLS passes through to MoP's proxy; AMQP TLS ends at the
        // gateway, plaintext on to AoP's proxy.
        assert_eq!(r, [(6651, 6653), (443, 8443), (8883, 5685), (5671, 5683)]);
    }

    /// A topic is owned by one broker: through the gateway (which spreads
    /// connections over the brokers) MQTT and AMQP go to MoP's / AoP's proxy,
    /// which forwards to the owner, not to a round-robin broker's listener.
    #[test]
    fn gateway_mqtt_and_amqp_reach_the_handler_proxies() {
        let spec = |handlers: &str| {
            broker(&format!(
                "{BASE}spec:\n  replicas: 3\n  zkServers: zk:2181\n  config: {{advertisedDomain: d.io, protocolHandlers: {handlers}}}\n  istio: {{enabled: true, gateway: {{tls: {{certSecretName: c}}}}}}\n"
            ))
        };
        let targets = |b: &PulsarBroker| -> Vec<(i32, i32)> {
            BrokerListeners::of(b).routes().iter().map(|r| (r.gateway_port, r.target.port)).skip(2).collect()
        };
        let b = spec("{mop: {enabled: true}, aop: {enabled: true}}");
        assert_eq!(targets(&b), [(8883, 5682), (5671, 5683)]);
        let internal: Vec<i32> = BrokerListeners::of(&b).internal_ports().iter().map(|p| p.port).collect();
        assert!(internal.contains(&5682) && internal.contains(&5683), "{internal:?}");
        let b = spec("{mop: {enabled: true, proxyEnabled: true}, aop: {enabled: true, proxyEnabled: true}}");
        assert_eq!(targets(&b), [(8883, 5682), (5671, 5683)]);
        // Off: straight to the broker's listener (validation refuses this with
        // more than one broker; see validate::broker).
        let b = spec("{mop: {enabled: true, proxyEnabled: false}}");
        assert_eq!(targets(&b), [(8883, 1883)]);
    }

    #[test]
    fn port_names_fit_kubernetes_limit() {
        let b = broker(&format!(
            "{BASE}spec:\n  zkServers: zk:2181\n  config: {{advertisedDomain: d.io, protocolHandlers: {{kop: {{enabled: true}}, mop: {{enabled: true}}, aop: {{enabled: true}}}}}}\n  istio: {{enabled: true, gateway: {{tls: {{mode: passthrough}}}}}}\n"
        ));
        for port in BrokerListeners::of(&b).container_ports() {
            assert!(port.name.len() <= 15, "{}", port.name);
        }
    }
}
