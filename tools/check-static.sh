#!/usr/bin/env bash
# The image (deploy/image/Dockerfile) copies a static musl build of
# `magnetar`. No container engine runs here, so this checks the binary it
# copies: built for x86_64-unknown-linux-musl (the debug profile, which
# links the same way as the image's release build and takes a quarter of
# the time), it must have no program interpreter and no shared library,
# and must start `magnetar run --help`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target" >&2
fi
# ring's few C and assembly files: musl-gcc where installed (the image's
# builder installs musl-tools), else the system gcc, which compiles them
# the same way (they use no libc headers beyond the freestanding ones);
# Rust's musl target links with its own self-contained musl.
if ! command -v x86_64-linux-musl-gcc >/dev/null 2>&1 && ! command -v musl-gcc >/dev/null 2>&1; then
  export CC_x86_64_unknown_linux_musl=${CC_x86_64_unknown_linux_musl:-gcc}
fi
cargo build --locked --target "$target" --bin magnetar >&2
bin="target/$target/debug/magnetar"

if readelf --program-headers "$bin" | grep -q INTERP; then
  echo "check-static: $bin has a program interpreter (dynamically linked)" >&2; exit 1
fi
if readelf --dynamic "$bin" | grep -q NEEDED; then
  echo "check-static: $bin needs shared libraries:" >&2
  readelf --dynamic "$bin" | grep NEEDED >&2; exit 1
fi
help=$(env -i "$bin" run --help)
case "$help" in
  *"--watch-namespace"*) ;;
  *) echo "check-static: '$bin run --help' did not print the run options:" >&2; echo "$help" >&2; exit 1 ;;
esac
echo "check-static: $bin is static and starts"
