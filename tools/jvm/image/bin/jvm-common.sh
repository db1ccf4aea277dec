# Sourced by the test image's bin/pulsar and bin/bookkeeper (magnetar's own
# stand-ins for the Pulsar image's scripts; see docs/testing.md, "JVM toolkit").
#
# Sets:
#   MAGNETAR_JVM_HOME  the toolkit's cache directory (lib/, logging/), from the
#                      environment or from where this file really lives
#                      (<dir>/image/bin/ -> <dir>), symlinks resolved
#   PULSAR_HOME        the Pulsar home: the current directory (magnetar's
#                      start-up scripts `cd /pulsar` first); conf/ is read there
#   JAVA               $JAVA_HOME/bin/java, or java on PATH
#   COMMON_OPTS        the options the upstream scripts give every JVM
# and sources conf/bkenv.sh and conf/pulsar_env.sh when the Pulsar home has them.

if [ -z "${MAGNETAR_JVM_HOME:-}" ]; then
  _self=$(readlink -f "${BASH_SOURCE[0]}")
  MAGNETAR_JVM_HOME=$(cd "$(dirname "$_self")/../.." && pwd)
fi
export MAGNETAR_JVM_HOME
PULSAR_HOME=$PWD
export PULSAR_HOME BK_HOME=$PWD

if [ ! -d "$MAGNETAR_JVM_HOME/lib" ]; then
  echo "magnetar test image: no lib/ under MAGNETAR_JVM_HOME=$MAGNETAR_JVM_HOME (run tools/build-jvm.sh)" >&2
  exit 1
fi

# Like upstream: the image's env files may set defaults.
[ -f "$PULSAR_HOME/conf/bkenv.sh" ] && . "$PULSAR_HOME/conf/bkenv.sh"
[ -f "$PULSAR_HOME/conf/pulsar_env.sh" ] && . "$PULSAR_HOME/conf/pulsar_env.sh"

if [ -n "${JAVA_HOME:-}" ]; then
  JAVA=$JAVA_HOME/bin/java
else
  JAVA=$(command -v java) || { echo "Error: JAVA_HOME not set, and no java executable found in PATH." >&2; exit 1; }
fi

# Test defaults, used only when the variable is unset or empty (the Pulsar
# image's conf/pulsar_env.sh and conf/bkenv.sh default to 2 GiB heaps):
# small heaps, serial GC and C1 only, so that several JVMs start quickly
# on two cores. BOOKIE_* fall back on PULSAR_* as in upstream's bkenv.sh.
MAGNETAR_TEST_MEM="-Xms32m -Xmx256m -XX:MaxDirectMemorySize=256m"
MAGNETAR_TEST_GC="-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
BOOKIE_MEM=${BOOKIE_MEM:-${PULSAR_MEM:-$MAGNETAR_TEST_MEM}}
BOOKIE_GC=${BOOKIE_GC:-${PULSAR_GC:-$MAGNETAR_TEST_GC}}
BOOKIE_GC_LOG=${BOOKIE_GC_LOG:-${PULSAR_GC_LOG:-}}
BOOKIE_EXTRA_OPTS=${BOOKIE_EXTRA_OPTS:-"-Dio.netty.leakDetectionLevel=disabled ${PULSAR_EXTRA_OPTS:-}"}
PULSAR_MEM=${PULSAR_MEM:-$MAGNETAR_TEST_MEM}
PULSAR_GC=${PULSAR_GC:-$MAGNETAR_TEST_GC}
PULSAR_GC_LOG=${PULSAR_GC_LOG:-}
PULSAR_EXTRA_OPTS=${PULSAR_EXTRA_OPTS:-}

PULSAR_LOG_LEVEL=${PULSAR_LOG_LEVEL:-info}
PULSAR_LOG_ROOT_LEVEL=${PULSAR_LOG_ROOT_LEVEL:-$PULSAR_LOG_LEVEL}

# What upstream's bin/pulsar and bin/bookkeeper give every JVM on Java 17,
# always with IPv4 (the pod runner rewrites IPv4 wildcard binds).
COMMON_OPTS="-Djava.net.preferIPv4Stack=true -Djute.maxbuffer=10485760"
COMMON_OPTS="$COMMON_OPTS -Dio.netty.tryReflectionSetAccessible=true"
COMMON_OPTS="$COMMON_OPTS --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED"
COMMON_OPTS="$COMMON_OPTS --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED"
COMMON_OPTS="$COMMON_OPTS --add-opens java.base/sun.net=ALL-UNNAMED --add-opens java.management/sun.management=ALL-UNNAMED"
COMMON_OPTS="$COMMON_OPTS -Dpulsar.log.level=$PULSAR_LOG_LEVEL -Dpulsar.log.root.level=$PULSAR_LOG_ROOT_LEVEL"

# Classpath and logging of one component: zookeeper or bookkeeper.
classpath() {
  echo "$MAGNETAR_JVM_HOME/lib/$1/*${2:+:$2}"
}
LOGBACK_OPTS="-Dlogback.configurationFile=$MAGNETAR_JVM_HOME/logging/logback.xml"
LOG4J_OPTS="-Dlog4j2.configurationFile=$MAGNETAR_JVM_HOME/logging/log4j2.xml -Dlog4j.shutdownHookEnabled=false"
