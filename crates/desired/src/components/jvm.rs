//! The JVM's memory options, sized from the pod's memory (SPEC 3.1): the
//! image's defaults ignore what the pod asked for.

use k8s_openapi::api::core::v1::EnvVar;
use magnetar_api::common::PodSpec;

use super::config_files::env_var;
use crate::names::Component;

/// Share of the pod's memory, in percent, given to the JVM's heap and to its
/// direct memory, per component. Without them every JVM takes the image's
/// defaults (`conf/pulsar_env.sh`: 2 GiB heap and 4 GiB direct memory;
/// `conf/bkenv.sh`: 2 GiB and 2 GiB) whatever the pod asked for, and a pod
/// that requests 512 MiB is killed as soon as the JVM grows into them.
///
/// The remaining quarter or more is for what the JVM uses besides (metaspace,
/// thread stacks, code cache, GC structures, RocksDB's native memory in
/// bookies):
/// - broker: Netty buffers and the managed-ledger cache (1/5 of direct
///   memory by default) live in direct memory: 50 % heap, 25 % direct.
/// - bookie: the write cache and read-ahead cache (each 1/4 of direct memory
///   by default) and Netty: 50 % heap, 25 % direct.
/// - auto-recovery: a BookKeeper client copying entries through Netty:
///   50 % heap, 25 % direct.
/// - proxy: forwards bytes in Netty's direct buffers: 50 % heap, 25 % direct.
/// - ZooKeeper: keeps its data tree on the heap and needs little direct
///   memory: 50 % heap, 15 % direct.
/// - toolset: none. It runs `pulsar-admin` and friends on demand, possibly
///   several at once, and their own defaults (128 MiB) suit that.
fn memory_shares(component: Component) -> Option<(u64, u64)> {
    match component {
        Component::Broker | Component::BookKeeper | Component::AutoRecovery | Component::Proxy => Some((50, 25)),
        Component::ZooKeeper => Some((50, 15)),
        Component::Toolset => None,
    }
}

/// The variable the component's start command reads its memory options
/// from: `bin/pulsar bookie` and `bin/bookkeeper` (auto-recovery, and the
/// bookie's `bookkeeper shell` steps) read BOOKIE_MEM (`conf/bkenv.sh`);
/// `bin/pulsar zookeeper|broker|proxy` read PULSAR_MEM.
fn memory_variable(component: Component) -> &'static str {
    match component {
        Component::BookKeeper | Component::AutoRecovery => "BOOKIE_MEM",
        _ => "PULSAR_MEM",
    }
}

/// The JVM's memory options for the main container: the user's
/// `jvmOptions.memoryOptions` as they are, or heap and direct memory sized
/// from the memory limit (the request when there is no limit; the JVM cannot
/// see a request, so percentages such as MaxRAMPercentage would apply to
/// the node's memory instead). Nothing without either: there is nothing to
/// size from, and the image's defaults stay. The heap's initial size is its
/// maximum, as in Pulsar's own defaults, so a pod that cannot have the
/// memory fails at start, not under load.
pub fn jvm_memory(component: Component, pod: &PodSpec) -> Option<EnvVar> {
    let name = memory_variable(component);
    let user = pod.jvm_options.as_ref().map(|j| j.memory_options.as_slice()).unwrap_or_default();
    if !user.is_empty() {
        return Some(env_var(name, &user.join(" ")));
    }
    let (heap, direct) = memory_shares(component)?;
    let resources = pod.resources.as_ref()?;
    let memory = [resources.limits.as_ref(), resources.requests.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|m| m.get("memory"))
        .and_then(|q| quantity_bytes(&q.0))?;
    let mib = |percent: u64| {
        // At least 16 MiB: a smaller -Xmx or -XX:MaxDirectMemorySize does
        // not start a JVM at all.
        ((memory * percent as f64 / 100.0) / MIB).floor().max(16.0) as u64
    };
    let (heap, direct) = (mib(heap), mib(direct));
    Some(env_var(name, &format!("-Xms{heap}m -Xmx{heap}m -XX:MaxDirectMemorySize={direct}m")))
}

const MIB: f64 = 1024.0 * 1024.0;

/// The JVM's options for the main container: the memory options of
/// [`jvm_memory`], then `jvmOptions.gcOptions`, `gcLoggingOptions` and
/// `extraOptions` as the variables the start command reads them from
/// (`bin/pulsar`: PULSAR_GC, PULSAR_GC_LOG, PULSAR_EXTRA_OPTS; bookies and
/// auto-recovery through `conf/bkenv.sh`: BOOKIE_GC, BOOKIE_GC_LOG,
/// BOOKIE_EXTRA_OPTS). An empty list leaves the image's default.
pub fn jvm_env(component: Component, pod: &PodSpec) -> Vec<EnvVar> {
    let mut env: Vec<EnvVar> = jvm_memory(component, pod).into_iter().collect();
    let Some(options) = pod.jvm_options.as_ref() else { return env };
    let prefix = match memory_variable(component) {
        "BOOKIE_MEM" => "BOOKIE",
        _ => "PULSAR",
    };
    let extra =
        [("GC", &options.gc_options), ("GC_LOG", &options.gc_logging_options), ("EXTRA_OPTS", &options.extra_options)];
    for (suffix, list) in extra {
        if !list.is_empty() {
            env.push(env_var(&format!("{prefix}_{suffix}"), &list.join(" ")));
        }
    }
    env
}

/// Bytes of a Kubernetes quantity (`512Mi`, `2G`, `1.5Gi`, `1e9`, `4096`);
/// `None` for text that is not one, or a negative amount.
pub fn quantity_bytes(q: &str) -> Option<f64> {
    let q = q.trim();
    let q = q.strip_prefix('+').unwrap_or(q);
    let end = q.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(end);
    // "1.", ".5" and "1.5" are numbers; "", "." and "1.2.3" are not (nor is
    // a negative amount: its '-' leaves the number empty).
    if !number.chars().any(|c| c.is_ascii_digit()) || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            10f64.powi(e)
        }
        _ => return None,
    };
    let bytes = value * factor;
    bytes.is_finite().then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_with(yaml: &str) -> PodSpec {
        serde_norway::from_str(yaml).unwrap()
    }

    fn mem(component: Component, pod: &PodSpec) -> Option<(String, String)> {
        jvm_memory(component, pod).map(|e| (e.name, e.value.unwrap_or_default()))
    }

    #[test]
    fn jvm_memory_derives_from_the_limit_then_the_request() {
        // Request only (every compat example): sized from the request.
        let requested = pod_with("resources: {requests: {cpu: 200m, memory: 512Mi}}");
        assert_eq!(
            mem(Component::Broker, &requested),
            Some(("PULSAR_MEM".into(), "-Xms256m -Xmx256m -XX:MaxDirectMemorySize=128m".into()))
        );
        // A limit wins over the request: the container is killed at the limit.
        let limited = pod_with("resources: {requests: {memory: 1Gi}, limits: {memory: 4Gi}}");
        assert_eq!(
            mem(Component::Proxy, &limited),
            Some(("PULSAR_MEM".into(), "-Xms2048m -Xmx2048m -XX:MaxDirectMemorySize=1024m".into()))
        );
        assert_eq!(
            mem(Component::ZooKeeper, &requested),
            Some(("PULSAR_MEM".into(), "-Xms256m -Xmx256m -XX:MaxDirectMemorySize=76m".into()))
        );
        // No memory at all: nothing to size from, the image's defaults stay.
        assert_eq!(mem(Component::Broker, &pod_with("resources: {requests: {cpu: '1'}}")), None);
        assert_eq!(mem(Component::Broker, &PodSpec::default()), None);
        // The toolset's CLIs keep their own small defaults.
        assert_eq!(mem(Component::Toolset, &limited), None);
    }

    #[test]
    fn bookies_and_auto_recovery_get_bookie_mem() {
        // bin/pulsar bookie and bin/bookkeeper read BOOKIE_MEM, not PULSAR_MEM.
        let p = pod_with("resources: {requests: {memory: 2G}}");
        for c in [Component::BookKeeper, Component::AutoRecovery] {
            assert_eq!(
                mem(c, &p),
                Some(("BOOKIE_MEM".into(), "-Xms953m -Xmx953m -XX:MaxDirectMemorySize=476m".into())),
                "{c:?}"
            );
        }
    }

    #[test]
    fn users_memory_options_win() {
        let p = pod_with(
            "resources: {limits: {memory: 8Gi}}\njvmOptions: {memoryOptions: [-Xms1g, -Xmx1g, '-XX:MaxDirectMemorySize=6g']}",
        );
        assert_eq!(
            mem(Component::BookKeeper, &p),
            Some(("BOOKIE_MEM".into(), "-Xms1g -Xmx1g -XX:MaxDirectMemorySize=6g".into()))
        );
        // Without resources too, and for the toolset when the user asks.
        let p = pod_with("jvmOptions: {memoryOptions: [-Xmx64m]}");
        assert_eq!(mem(Component::Toolset, &p), Some(("PULSAR_MEM".into(), "-Xmx64m".into())));
        // An empty list is no choice: sizes are derived as usual.
        let p = pod_with("resources: {requests: {memory: 512Mi}}\njvmOptions: {memoryOptions: []}");
        assert!(mem(Component::Broker, &p).unwrap().1.starts_with("-Xms256m"));
    }

    #[test]
    fn quantities_in_every_kubernetes_form() {
        let mi = |q: &str| quantity_bytes(q).map(|b| b / MIB);
        for (q, want) in [
            ("512Mi", 512.0),
            ("1Gi", 1024.0),
            ("1.5Gi", 1536.0),
            ("+2Gi", 2048.0),
            ("1048576", 1.0),
            ("1024Ki", 1.0),
            ("1e6", 1e6 / MIB),
            ("1E6", 1e6 / MIB),
            ("500M", 5e8 / MIB),
            (".5Gi", 512.0),
        ] {
            let got = mi(q).unwrap_or_else(|| panic!("{q} did not parse"));
            assert!((got - want).abs() < 1e-9, "{q}: {got} != {want}");
        }
        for bad in ["", "Mi", "-1Gi", "1.2.3Mi", "12Mb", "1e", "two"] {
            assert_eq!(quantity_bytes(bad), None, "{bad}");
        }
    }
}
