#!/usr/bin/env bash
# Builds Helm from the pinned Go module in tools/helm into a cache directory
# keyed by its version and go.sum. The chart's tests (crates/cli/tests/chart.rs)
# run `helm lint`, `helm template` and `helm install` with it. A second run
# with the same inputs does nothing.
#
# Prints the path of the helm binary on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Keep in step with tools/helm/go.mod.
HELM_VERSION=v4.3.2

pinned=$(sed -n 's/^\(require \|\t\)helm\.sh\/helm\/v4 \(v[^ ]*\).*$/\2/p' "$here/helm/go.mod")
if [ "$pinned" != "$HELM_VERSION" ]; then
  echo "build-helm: tools/helm/go.mod pins helm $pinned, this script $HELM_VERSION: keep them in step" >&2
  exit 1
fi

cache_root=${MAGNETAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magnetar}
key="helm-${HELM_VERSION}_$(sha256sum "$here/helm/go.sum" | cut -c1-12)"
dir="$cache_root/helm/$key"
mkdir -p "$dir"

log() { echo "build-helm: $*" >&2; }

if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/helm/.lock"
  if ! flock -n 9; then
    log "another build-helm.sh is running; waiting for it"
    flock 9
  fi
fi

if [ -x "$dir/helm" ]; then
  log "helm cached in $dir"
else
  log "building helm $HELM_VERSION into $dir (cold build: about 2 minutes on 2 cores)"
  start=$(date +%s)
  (
    cd "$here/helm"
    export CGO_ENABLED=0
    go build -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
      -o "$dir/helm.partial" helm.sh/helm/v4/cmd/helm
  )
  mv "$dir/helm.partial" "$dir/helm"
  log "helm built in $(( $(date +%s) - start ))s"
fi

echo "$dir/helm"
