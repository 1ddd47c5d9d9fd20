#!/usr/bin/env bash
# Where the proxy core's time goes under load, for wharf and nginx side by
# side, and wharf's instructions per request. See docs/performance.md,
# "Profiling", for what it prints and how to read it.
#
#   bench/profile.sh                    # perf profile and flamegraph of each peer's core
#   bench/profile.sh instructions       # wharf's user-space instructions per request (callgrind)
#   WHARF_BIN=target/release/wharf bench/profile.sh   # skip the build
#
# Installs what is missing: nginx, wrk, perf (Debian linux-perf), valgrind
# and h2load (nghttp2-client) from Debian, and inferno (the flamegraph
# drawer) from crates.io with cargo. Everything runs on 127.0.0.1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
mode="${1:-cores}"

missing=()
# nginx is the backend; HAProxy and Caddy only when BENCH_PEERS names them.
for tool in nginx wrk $(echo "${BENCH_PEERS:-}" | tr ',' '\n' | grep -x -e haproxy -e caddy || true); do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
if [ "$mode" = instructions ]; then
    command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
    command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
fi
for tool in openssl taskset python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "profile: $tool is required" >&2; exit 1; }
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((${#missing[@]})); then
    echo "profile: installing ${missing[*]} from Debian" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
fi
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
if [ "$mode" = cores ] && ! command -v inferno-flamegraph >/dev/null 2>&1; then
    echo "profile: installing inferno (flamegraphs) with cargo install" >&2
    cargo install inferno --locked --quiet >&2 || echo "profile: no inferno; the flamegraphs are skipped" >&2
fi
# perf samples a whole core, the kernel's part included, for root, or for
# others when kernel.perf_event_paranoid is -1 (lowered here, and said so).
if [ "$mode" = cores ] && [ "$(id -u)" -ne 0 ] &&
    [ "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)" -gt -1 ]; then
    echo "profile: setting kernel.perf_event_paranoid to -1 so perf can sample a whole core" >&2
    echo -1 | sudo tee /proc/sys/kernel/perf_event_paranoid >/dev/null ||
        echo "profile: could not; perf may refuse to sample the core" >&2
fi

if [ -z "${WHARF_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    echo "profile: building wharf (cargo build --release, target $CARGO_TARGET_DIR)" >&2
    (cd "$root" && timeout 900 cargo build --release --quiet)
    WHARF_BIN="$CARGO_TARGET_DIR/release/wharf"
fi
export WHARF_BIN

exec python3 "$here/profile.py" "$@"
