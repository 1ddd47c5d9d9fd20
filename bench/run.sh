#!/usr/bin/env bash
# wharf side by side with nginx, HAProxy and Caddy on this machine.
#
# Installs the peers and wrk from Debian when they are missing, builds wharf
# (unless WHARF_BIN points at a binary), then hands over to bench.py, which
# starts one backend and the four proxies on loopback, runs every test
# interleaved and repeated, prints the tables and stops everything it started.
# Everything goes to 127.0.0.1 only. See docs/performance.md for what each
# test means, the knobs (BENCH_*), and the results of a full run.
#
#   bench/run.sh                                  # full run, about 11 minutes
#   BENCH_DURATION=3s BENCH_REPEATS=1 bench/run.sh  # a quick look
#   WHARF_BIN=target/release/wharf bench/run.sh   # skip the build
set -euo pipefail

export BENCH_START="${BENCH_START:-$(date +%s)}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

missing=()
for tool in nginx haproxy caddy wrk; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# h2load, for the HTTP/2 test, comes in Debian's nghttp2-client.
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
for tool in openssl taskset python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench: $tool is required" >&2; exit 1; }
done
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]} from Debian" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2
    # Debian starts packaged services where there is an init system; the
    # benchmark runs its own instances on its own ports and never needs them.
fi

if [ -z "${WHARF_BIN:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
    echo "bench: building wharf (cargo build --release, target $CARGO_TARGET_DIR)" >&2
    (cd "$root" && timeout 900 cargo build --release --quiet)
    WHARF_BIN="$CARGO_TARGET_DIR/release/wharf"
    WHARF_COMMIT="${WHARF_COMMIT:-$(git -C "$root" describe --always --dirty 2>/dev/null || true)}"
    export WHARF_COMMIT
fi
export WHARF_BIN

# 10,000 idle clients need 10,000 descriptors in the client and in each proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 "$here/bench.py" "$@"
