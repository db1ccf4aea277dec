#!/usr/bin/env bash
# Runs every check and test of magnetar from a clean clone: builds the local
# control plane and Istio's tools (istioctl, pilot-discovery, analyze-files)
# if they are not cached yet (tools/build-cluster.sh, tools/build-istio.sh), then
# formatting, lints, unit, property, schema and integration tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

start=$(date +%s)
step() { echo "== $* ($(( $(date +%s) - start ))s)"; }

step "control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) and Istio CRDs"
tools/build-cluster.sh >/dev/null

step "Istio (istioctl, pilot-discovery, analyze-files)"
tools/build-istio.sh >/dev/null

step "JVM toolkit (ZooKeeper, BookKeeper, Pulsar configuration classes) for the real-process tests"
tools/build-jvm.sh >/dev/null

step "Helm (the chart's tests run helm lint, template and install)"
tools/build-helm.sh >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "static musl binary for the image (deploy/image/Dockerfile)"
tools/check-static.sh

step "cargo test"
cargo test --workspace --locked --no-fail-fast

step "no control-plane process left behind"
left=$(pgrep -f "$(tools/build-cluster.sh 2>/dev/null | tail -n1)/bin/" || true)
if [ -n "$left" ]; then
  echo "processes left running:"; ps -o pid,args -p $left
  exit 1
fi
step "all passed"
