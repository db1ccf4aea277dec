#!/usr/bin/env bash
# Builds Istio's istioctl and pilot-discovery (istiod) from the pinned Go
# module in tools/istio, and tools/istio/cmd/analyze-files (istioctl's
# analyzers over files, with the Pods, Services, Namespaces and Secrets that
# `istioctl analyze --use-kube=false` ignores) and tools/istio/cmd/xds-dump
# (istiod's configuration generator for one proxy, through Istio's xDS test
# harness) against the same Istio, into a
# cache directory keyed by the Istio version and a hash of tools/istio (go.sum
# and our own sources). A second run with the same inputs does nothing.
#
# Layout of the cache directory:
#   bin/istioctl  bin/pilot-discovery  bin/analyze-files  bin/xds-dump  bin/.complete
#   versions      what was built, and how long each binary took
#
# Prints the cache directory on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Versions: keep in step with tools/istio/go.mod. istio.io/istio has no semver
# tags on the Go module proxy, only pseudo-versions of commits; this is the
# newest it serves, a commit whose VERSION file says 1.31 (so "1.31-dev", as
# Istio's own Makefile names a build of it).
ISTIO_MODULE_VERSION=v0.0.0-20260827124520-eed52ebb66ad
ISTIO_VERSION=1.31-dev
ISTIO_REVISION=${ISTIO_MODULE_VERSION##*-}
# Istio's release builds of istioctl and pilot-discovery (Makefile.core.mk's STANDARD_TAGS).
ISTIO_TAGS=vtprotobuf,disable_pgv

pinned=$(sed -n 's/^\(require \|\t\)istio\.io\/istio \(v[^ ]*\).*$/\2/p' "$here/istio/go.mod")
if [ "$pinned" != "$ISTIO_MODULE_VERSION" ]; then
  echo "build-istio: tools/istio/go.mod pins istio.io/istio $pinned, this script $ISTIO_MODULE_VERSION: keep them in step" >&2
  exit 1
fi

cache_root=${MAGNETAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magnetar}
inputs=$(cd "$here/istio" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
key="${ISTIO_VERSION}-${ISTIO_REVISION}_${inputs}"
dir="$cache_root/istio/$key"
mkdir -p "$cache_root/istio"

log() { echo "build-istio: $*" >&2; }

# Several test binaries (or engineers) may start at once: one builds, the
# others wait for it instead of building the same thing concurrently.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/istio/.lock"
  if ! flock -n 9; then
    log "another build-istio.sh is running; waiting for it"
    flock 9
  fi
fi

if [ -f "$dir/bin/.complete" ]; then
  log "istioctl, pilot-discovery, analyze-files and xds-dump cached in $dir"
else
  command -v go >/dev/null 2>&1 || { log "go is not on PATH (needs Go >= 1.26)"; exit 1; }
  log "building Istio $ISTIO_VERSION ($ISTIO_REVISION) istioctl, pilot-discovery, analyze-files and xds-dump into $dir (cold build: about 12 CPU-minutes, 18-25 minutes on 2 busy cores)"
  start=$(date +%s)
  tmp="$cache_root/istio/.$key.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin"
  goos=$(go env GOOS)
  goarch=$(go env GOARCH)
  # What Istio's common/scripts/report_build_info.sh stamps into a release.
  v=istio.io/istio/pkg/version
  ldflags="-s -w -X $v.buildVersion=$ISTIO_VERSION -X $v.buildGitRevision=$ISTIO_REVISION"
  ldflags+=" -X $v.buildStatus=Clean -X $v.buildTag=$ISTIO_MODULE_VERSION -X $v.buildHub=docker.io/istio"
  ldflags+=" -X $v.buildOS=$goos -X $v.buildArch=$goarch"
  {
    echo "istio.io/istio $ISTIO_MODULE_VERSION ($ISTIO_VERSION)"
    echo "go $(go env GOVERSION) $goos/$goarch, tags $ISTIO_TAGS"
  } > "$tmp/versions"
  (
    cd "$here/istio"
    export CGO_ENABLED=0
    for tool in istioctl pilot-discovery analyze-files xds-dump; do
      t0=$(date +%s)
      pkg=$(go list -f '{{.ImportPath}}' tool | grep "/$tool\$")
      tags=$ISTIO_TAGS
      # Istio's xDS test harness validates what it generates with the
      # protoc-gen-validate code that disable_pgv leaves out.
      [ "$tool" = xds-dump ] && tags=${ISTIO_TAGS/,disable_pgv/}
      go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp/bin/$tool" "$pkg"
      took=$(( $(date +%s) - t0 ))
      echo "$tool built in ${took}s" >> "$tmp/versions"
      log "  built $tool in ${took}s"
    done
  )
  touch "$tmp/bin/.complete"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "Istio built in $(( $(date +%s) - start ))s"
fi

echo "$dir"
