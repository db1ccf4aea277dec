#!/usr/bin/env bash
# Builds the JVM toolkit of the tests: resolves Apache ZooKeeper, Apache
# BookKeeper and Pulsar's configuration classes from Maven Central with the
# pinned poms in tools/jvm, compiles ConfigCheck, and lays out a stand-in for
# the Pulsar image's /pulsar (bin/pulsar, bin/bookkeeper,
# bin/apply-config-from-env.py, conf/), into a cache directory keyed by the
# versions and a hash of tools/jvm. A second run with the same inputs does
# nothing.
#
# Layout of the cache directory:
#   lib/zookeeper/*.jar   lib/bookkeeper/*.jar   lib/pulsar/*.jar
#   classes/              ConfigCheck
#   bin/config-check      broker|proxy <file>
#   logging/              logback.xml (ZooKeeper), log4j2.xml (BookKeeper), log4j2-stderr.xml
#   image/bin/            pulsar, bookkeeper, apply-config-from-env.py (+ jvm-common.sh)
#   image/conf/           the test image's conf files
#   versions              what was resolved
#
# Prints the cache directory on its last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Versions: keep in step with tools/jvm/*/pom.xml.
ZOOKEEPER_VERSION=3.9.5
ZOOKEEPER_METRICS_VERSION=3.9.3   # zookeeper-prometheus-metrics: newest that resolves
BOOKKEEPER_VERSION=4.17.2
PULSAR_VERSION=4.0.6              # pulsar-broker-common and pulsar-proxy
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

cache_root=${MAGNETAR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/magnetar}
inputs=$(cd "$here" && { find jvm -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; sha256sum build-jvm.sh; } | sha256sum | cut -c1-12)
key="zk-${ZOOKEEPER_VERSION}_bk-${BOOKKEEPER_VERSION}_pulsar-${PULSAR_VERSION}_${inputs}"
dir="$cache_root/jvm/$key"
mkdir -p "$cache_root/jvm"

log() { echo "build-jvm: $*" >&2; }

# Several test binaries (or engineers) may start at once: one builds, the
# others wait for it instead of resolving the same jars concurrently.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/jvm/.lock"
  if ! flock -n 9; then
    log "another build-jvm.sh is running; waiting for it"
    flock 9
  fi
fi

if [ -f "$dir/.complete" ]; then
  log "JVM toolkit cached in $dir"
else
  for tool in java javac mvn; do
    command -v "$tool" >/dev/null 2>&1 || { log "$tool is not on PATH (needs a JDK 17 and Maven)"; exit 1; }
  done
  log "resolving ZooKeeper $ZOOKEEPER_VERSION, BookKeeper $BOOKKEEPER_VERSION, Pulsar $PULSAR_VERSION config classes into $dir (cold: about a minute, mostly downloads)"
  start=$(date +%s)
  tmp="$cache_root/jvm/.$key.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp/lib" "$tmp/classes" "$tmp/bin" "$tmp/logging" "$tmp/image/bin" "$tmp/image/conf"
  for part in zookeeper bookkeeper pulsar; do
    t0=$(date +%s)
    if ! mvn -B -q "-Dmaven.repo.local=$cache_root/m2" -f "$here/jvm/$part/pom.xml" \
        "$DEPENDENCY_PLUGIN:copy-dependencies" -DincludeScope=runtime \
        "-DoutputDirectory=$tmp/lib/$part" >"$tmp/mvn-$part.log" 2>&1; then
      tail -n 30 "$tmp/mvn-$part.log" >&2
      log "resolving tools/jvm/$part/pom.xml failed (log: $tmp/mvn-$part.log)"
      exit 1
    fi
    log "  lib/$part: $(find "$tmp/lib/$part" -name '*.jar' | wc -l) jars, $(du -sh "$tmp/lib/$part" | cut -f1) in $(( $(date +%s) - t0 ))s"
    rm -f "$tmp/mvn-$part.log"
  done

  javac --release 17 -nowarn -cp "$tmp/lib/pulsar/*" -d "$tmp/classes" "$here/jvm/config-check/ConfigCheck.java"
  install -m 755 "$here/jvm/config-check/config-check" "$tmp/bin/config-check"
  install -m 644 "$here"/jvm/logging/* "$tmp/logging/"
  install -m 755 "$here"/jvm/image/bin/pulsar "$here"/jvm/image/bin/bookkeeper \
    "$here"/jvm/image/bin/apply-config-from-env.py "$tmp/image/bin/"
  install -m 644 "$here/jvm/image/bin/jvm-common.sh" "$tmp/image/bin/"
  install -m 644 "$here"/jvm/image/conf/* "$tmp/image/conf/"
  cat >"$tmp/versions" <<VERSIONS
zookeeper=$ZOOKEEPER_VERSION
zookeeper-prometheus-metrics=$ZOOKEEPER_METRICS_VERSION
bookkeeper=$BOOKKEEPER_VERSION
pulsar-broker-common=$PULSAR_VERSION
pulsar-proxy=$PULSAR_VERSION
VERSIONS
  rm -rf "$dir"
  mv "$tmp" "$dir"
  touch "$dir/.complete"
  log "JVM toolkit built in $(( $(date +%s) - start ))s"
fi

echo "$dir"
