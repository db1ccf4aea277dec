#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) from the pinned Go module in tools/cluster, and
# fetches Istio's CRDs from the istio.io/api module, into a cache directory
# keyed by version. A second run with the same versions does nothing.
#
# Prints the cache directory on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Versions: keep in step with tools/cluster/go.mod.
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.8
KWOK_VERSION=v0.8.0
ISTIO_VERSIONS=(1.24.2 1.32.0)   # the guide's version and the newest served
# Gateway API: 1.5 made TLSRoute v1 (standard channel); 1.6.3 is the newest
# the machine's Go unpacks without a newer toolchain. Keep in step with
# crates/testenv/src/binaries.rs (GATEWAY_API_VERSION).
GATEWAY_API_VERSION=v1.6.3
# prometheus-operator's CRDs (PodMonitor, for spec.monitoring); keep in step
# with crates/testenv/src/binaries.rs (PROMETHEUS_OPERATOR_VERSION).
PROMETHEUS_OPERATOR_VERSION=v0.85.0

cache_root=${MAGNETAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magnetar}
key="kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_$(sha256sum "$here/cluster/go.sum" | cut -c1-12)"
dir="$cache_root/cluster/$key"
mkdir -p "$dir/bin" "$dir/istio" "$dir/gateway-api" "$dir/prometheus-operator"

log() { echo "build-cluster: $*" >&2; }

# Several test binaries (or engineers) may start at once: one builds, the
# others wait for it instead of building the same thing concurrently.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/cluster/.lock"
  if ! flock -n 9; then
    log "another build-cluster.sh is running; waiting for it"
    flock 9
  fi
fi

if [ -f "$dir/bin/.complete" ]; then
  log "control plane cached in $dir"
else
  log "building Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION into $dir (cold build: 5-10 minutes on 2 cores)"
  start=$(date +%s)
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$now"
  done
  ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION"
  (
    cd "$here/cluster"
    export CGO_ENABLED=0
    for tool in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
      t0=$(date +%s)
      pkg=$(go list -f '{{.ImportPath}}' tool | grep "/$tool\$")
      go build -trimpath -ldflags "$ldflags" -o "$dir/bin/$tool" "$pkg"
      log "  built $tool in $(( $(date +%s) - t0 ))s"
    done
  )
  touch "$dir/bin/.complete"
  log "control plane built in $(( $(date +%s) - start ))s"
fi

# Istio CRDs come straight from the istio.io/api module (not committed).
for v in "${ISTIO_VERSIONS[@]}"; do
  out="$dir/istio/$v.yaml"
  if [ ! -s "$out" ]; then
    src=$(cd "$dir" && GO111MODULE=on GOFLAGS= go mod download -json "istio.io/api@v$v" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    cp "$src/kubernetes/customresourcedefinitions.gen.yaml" "$out"
    chmod 644 "$out"
    log "Istio $v CRDs: $out"
  fi
done

# Gateway API CRDs, each channel in one file, from the sigs.k8s.io/gateway-api
# module (not committed). Only the CRDs: the channel's safe-upgrades
# ValidatingAdmissionPolicy and the kustomization stay out.
for channel in standard experimental; do
  out="$dir/gateway-api/$GATEWAY_API_VERSION-$channel.yaml"
  if [ ! -s "$out" ]; then
    src=$(cd "$dir" && GO111MODULE=on GOFLAGS= go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    tmp="$out.partial"
    : >"$tmp"
    for f in "$src/config/crd/$channel"/*.yaml; do
      case "$(basename "$f")" in *vap_safeupgrades*|kustomization.yaml) continue ;; esac
      { echo "---"; cat "$f"; } >>"$tmp"
    done
    chmod 644 "$tmp"
    mv "$tmp" "$out"
    log "Gateway API $GATEWAY_API_VERSION $channel CRDs: $out"
  fi
done

# prometheus-operator's PodMonitor CRD (spec.monitoring) and ServiceMonitor
# CRD (the chart's optional ServiceMonitor), from its module (not committed).
for kind in podmonitors servicemonitors; do
  out="$dir/prometheus-operator/$PROMETHEUS_OPERATOR_VERSION-$kind.yaml"
  if [ ! -s "$out" ]; then
    src=$(cd "$dir" && GO111MODULE=on GOFLAGS= go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    install -m 644 "$src/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$out"
    log "prometheus-operator $PROMETHEUS_OPERATOR_VERSION $kind CRD: $out"
  fi
done

# kwok's default node, pod and volume stages (what kwokctl installs), and its
# default StorageClass, assembled from the kwok module; not committed.
kwok_stages="node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml
  volume/fast/pvc-provision.yaml volume/fast/pv-bind.yaml volume/fast/pvc-delete.yaml volume/fast/pv-delete.yaml"
stamp=$(echo "$kwok_stages" | sha256sum | cut -c1-12)
if [ ! -s "$dir/kwok/stages-$stamp.yaml" ]; then
  mkdir -p "$dir/kwok"
  kwok_src=$(cd "$dir" && GO111MODULE=on GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  for f in $kwok_stages; do
    echo "---"
    cat "$kwok_src/kustomize/stage/$f"
  done > "$dir/kwok/stages.tmp"
  cp "$kwok_src/kustomize/stage/volume/fast/storage-class.yaml" "$dir/kwok/storage-class.yaml"
  chmod 644 "$dir/kwok/storage-class.yaml"
  cp "$dir/kwok/stages.tmp" "$dir/kwok/stages-$stamp.yaml"
  mv "$dir/kwok/stages.tmp" "$dir/kwok/stages.yaml"
  log "kwok stages: $dir/kwok/stages.yaml"
fi

echo "$dir"
