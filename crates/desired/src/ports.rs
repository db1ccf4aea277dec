//! Ports of every component (SPEC 3.1, 3.4).

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
