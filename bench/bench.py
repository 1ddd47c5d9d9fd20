#!/usr/bin/env python3
"""wharf against nginx, HAProxy and Caddy on one machine, all on loopback.

Started by bench/run.sh (which installs the peers and builds wharf); see
docs/performance.md for the method and the results. This file:

- generates one TLS key and certificate and a config for every server;
- starts one backend (nginx, one worker, fixed answers) and the four proxies,
  each pinned with taskset: the proxy under test gets a core of its own, the
  load generator (wrk, one thread) and the backend share the other;
- runs every test for every peer, interleaved (the peer order rotates every
  round) and repeated BENCH_REPEATS times;
- prints median req/s, p50/p99 latency, proxy CPU, memory with 10,000 idle
  connections, and each peer's ratio to nginx;
- stops everything it started, and gives up on the remaining runs rather than
  pass BENCH_DEADLINE.

The servers and their configs are in peers.py; the idle-connection client
of the memory test is idle_client.py.
"""

import json
import os
import re
import select
import subprocess
import sys
import shutil
import signal
import tempfile
import time

from configs import write
from peers import FORWARDER, PEERS, Processes, core_busy, cpu_times, ports, rss_kib, start_peers
from report import conditions, load_average, report


def env(name, default):
    value = os.environ.get(name, "")
    return value if value.strip() else default


def seconds(text):
    """'7s', '500ms', '1m' or a bare number of seconds."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m)?\s*", text)
    if not match:
        sys.exit(f"bench: {text!r} is not a duration; write e.g. 7s or 500ms")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1, "m": 60}[unit]


class Settings:
    def __init__(self):
        cpus = sorted(os.sched_getaffinity(0))
        self.duration = seconds(env("BENCH_DURATION", "7s"))
        self.warmup = seconds(env("BENCH_WARMUP", "1s"))
        self.repeats = int(env("BENCH_REPEATS", "3"))
        self.deadline = seconds(env("BENCH_DEADLINE", "14m"))
        self.start = float(env("BENCH_START", str(time.time())))
        self.peers = [p for p in env("BENCH_PEERS", ",".join(PEERS)).split(",") if p]
        self.tests = [t for t in env("BENCH_TESTS", ",".join(TESTS)).split(",") if t]
        self.idle_connections = int(env("BENCH_IDLE_CONNECTIONS", "10000"))
        self.proxy_cpu = int(env("BENCH_PROXY_CPU", str(cpus[0])))
        self.load_cpu = int(env("BENCH_LOAD_CPU", str(cpus[-1])))
        default_backend = cpus[2] if len(cpus) > 2 else self.load_cpu
        self.backend_cpu = int(env("BENCH_BACKEND_CPU", str(default_backend)))
        self.port_base = int(env("BENCH_PORT_BASE", "18000"))
        self.wharf_bin = os.path.abspath(env("WHARF_BIN", "target/release/wharf"))
        self.keep = env("BENCH_KEEP", "") not in ("", "0")
        self.out = env("BENCH_OUT", "")
        for peer in self.peers:
            if peer not in PEERS:
                sys.exit(f"bench: unknown peer {peer!r} in BENCH_PEERS; known: {', '.join(PEERS)}")
        for test in self.tests:
            if test not in TESTS:
                sys.exit(f"bench: unknown test {test!r} in BENCH_TESTS; known: {', '.join(TESTS)}")


# name -> (what, path, connections, https, extra wrk arguments)
TESTS = {
    "small-64": ("keep-alive, 13 B body, 64 connections", "/small", 64, False, []),
    "small-256": ("keep-alive, 13 B body, 256 connections", "/small", 256, False, []),
    # What browsers and HTTP libraries (Go, Python requests, Node fetch) send;
    # nothing is compressed (13 B), so the work is the same as small-64's.
    "accept-64": (
        "keep-alive, 13 B body, 64 connections, Accept-Encoding as clients send it",
        "/small",
        64,
        False,
        ["-H", "Accept-Encoding: gzip, deflate, br, zstd"],
    ),
    "large-64": ("keep-alive, 64 KiB body, 64 connections", "/64k", 64, False, []),
    "tls-64": ("TLS keep-alive, 13 B body, 64 connections", "/small", 64, True, []),
    "handshake-64": (
        "new TLS connection per request (Connection: close), 64 at a time",
        "/small",
        64,
        True,
        ["-H", "Connection: close"],
    ),
    # A 2.7 KB HTML file from disk, no Accept-Encoding (nginx and Caddy
    # compress nothing by default). HAProxy serves no files.
    "static-64": ("keep-alive, a 2.7 KB static file, 64 connections", "/files/page.html", 64, False, []),
    # What browsers use over HTTPS: HTTP/2, many requests at once on few
    # connections. Loaded by h2load instead of wrk.
    "h2-16x8": ("HTTP/2 over TLS, 13 B body, 16 connections x 8 streams", "/small", 16, True, []),
    "idle-10k": ("memory with idle keep-alive connections", "/small", 0, False, []),
}
# HTTP/2 tests: streams in flight per connection (h2load -m).
H2_STREAMS = {"h2-16x8": 8}
# Tests a peer cannot take part in.
UNSUPPORTED = {("static-64", "haproxy")}
# The backend hit directly, for the tests where that means something.
DIRECT_TESTS = ["small-64", "small-256", "large-64"]
# The L4 forwarder (peers.FORWARDER) in the proxy's place: how far the load
# core lets any proxy go in the plain keep-alive tests.
# (accept-64 is small-64 to a forwarder.)
CEILING_TESTS = ["small-64", "small-256", "large-64"]

WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {\"requests\":%d,\"duration_us\":%d,\"bytes\":%d,\"p50_us\":%d,\"p99_us\":%d," ..
    "\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(settings, work, port, test, duration, pid=None, core=None):
    """One load run against 127.0.0.1:port (wrk, or h2load for the HTTP/2
    tests); with `pid` and `core`, also the share of a CPU that process used
    and the share other processes took on its core."""
    _, path, connections, https, extra = TESTS[test]
    scheme = "https" if https else "http"
    url = f"{scheme}://127.0.0.1:{port}{path}"
    if test in H2_STREAMS:
        argv = ["taskset", "-c", str(settings.load_cpu), "h2load", "-t1", f"-c{connections}"]
        argv += [f"-m{H2_STREAMS[test]}", f"-D{max(1, round(duration))}", url]
        parse = parse_h2load
    else:
        argv = ["taskset", "-c", str(settings.load_cpu), "wrk", "-t1", f"-c{connections}"]
        argv += [f"-d{max(1, round(duration))}s", "--timeout", "5s", "-s", os.path.join(work, "report.lua")]
        argv += extra + [url]
        parse = parse_wrk
    user_before, system_before = cpu_times(pid) if pid else (0.0, 0.0)
    core_before = core_busy(core) if core is not None else 0.0
    load_before = core_busy(settings.load_cpu)
    wall_before = time.time()
    result = subprocess.run(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=duration + 30
    )
    wall = time.time() - wall_before
    load_core = (core_busy(settings.load_cpu) - load_before) / wall
    cpu = user = None
    if pid:
        user_after, system_after = cpu_times(pid)
        user = (user_after - user_before) / wall
        cpu = user + (system_after - system_before) / wall
    others = None
    if core is not None and cpu is not None:
        others = max(0.0, (core_busy(core) - core_before) / wall - cpu)
    outcome = parse(result.stdout)
    if outcome is None:
        raise RuntimeError(f"{argv[3]} gave no report: {result.stdout.strip()[-500:]}")
    outcome.update({"cpu": cpu, "user": user, "others": others, "load_core": load_core})
    return outcome


def parse_wrk(output):
    """req/s, latency and errors from the line report.lua prints."""
    for line in output.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
            return {
                "rps": data["requests"] / (data["duration_us"] / 1e6),
                "p50_ms": data["p50_us"] / 1000,
                "p99_ms": data["p99_us"] / 1000,
                "errors": errors,
                "requests": data["requests"],
            }
    return None


def parse_h2load(output):
    """req/s and errors from h2load's summary. h2load gives no latency
    percentiles (only min, max, mean), so p50 and p99 stay empty."""
    rate = re.search(r"finished in [0-9.]+s, ([0-9.]+) req/s", output)
    counts = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
        output,
    )
    if not rate or not counts:
        return None
    succeeded, failed, errored, timeout = (int(n) for n in counts.groups())
    statuses = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    not_ok = sum(int(n) for n in statuses.groups()) if statuses else 0
    return {
        "rps": float(rate.group(1)),
        "p50_ms": None,
        "p99_ms": None,
        "errors": failed + errored + timeout + not_ok,
        "requests": succeeded,
    }


def run_idle(settings, pid, port):
    """Memory of the proxy with N idle keep-alive connections, each having sent one request."""
    before = rss_kib(pid)
    client = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(settings.load_cpu),
            sys.executable,
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "idle_client.py"),
            "127.0.0.1",
            str(port),
            str(settings.idle_connections),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # The client prints one line when every connection is open (or has
        # failed); give it 60 s, never more.
        line = ""
        readable, _, _ = select.select([client.stdout], [], [], 60)
        if readable:
            line = client.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"idle client: {line.strip() or 'no answer'}")
        opened = int(line.split()[1])
        time.sleep(1.0)
        during = rss_kib(pid)
    finally:
        try:
            client.stdin.close()
        except OSError:
            pass
        try:
            client.wait(15)
        except subprocess.TimeoutExpired:
            client.kill()
            client.wait()
    time.sleep(1.0)  # let the proxy notice the closes before the next run
    return {
        "rss_before_kib": before,
        "rss_kib": during,
        "opened": opened,
        "per_conn_kib": (during - before) / max(1, opened),
    }


def main():
    settings = Settings()
    load_before = load_average()
    work = tempfile.mkdtemp(prefix="wharf-bench-")
    os.chmod(work, 0o755)  # nginx workers run as www-data and read the 64 KiB file
    write(work, "report.lua", WRK_REPORT)
    processes = Processes()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    results, idle, skipped = {}, {}, 0
    try:
        if not os.access(settings.wharf_bin, os.X_OK) and "wharf" in settings.peers:
            sys.exit(f"bench: no wharf binary at {settings.wharf_bin}; set WHARF_BIN or run bench/run.sh")
        backend, running = start_peers(settings, processes, work)
        backend_port = ports(settings)["backend"]

        # Plan: every round runs every test for every peer, peers rotated.
        plan = []
        for round_index in range(settings.repeats):
            order = (
                settings.peers[round_index % len(settings.peers) :]
                + settings.peers[: round_index % len(settings.peers)]
            )
            for test in settings.tests:
                targets = order + (["backend direct"] if test in DIRECT_TESTS else [])
                targets += [FORWARDER] if test in CEILING_TESTS and FORWARDER in running else []
                for peer in targets:
                    plan.append((round_index, test, peer))
        load_runs = sum(1 for _, test, _ in plan if test != "idle-10k")
        idle_runs = len(plan) - load_runs
        warmups = len(settings.peers) * len([t for t in settings.tests if t != "idle-10k"])
        fixed = idle_runs * 8 + warmups * (settings.warmup + 0.6) + load_runs * 0.8 + 20
        left = settings.deadline - (time.time() - settings.start)
        if load_runs and fixed + load_runs * settings.duration > left:
            # Setup (install, build) took part of the budget: shorten the runs
            # rather than blow the deadline.
            shorter = max(2.0, int((left - fixed) / load_runs))
            print(
                f"bench: shortening runs from {settings.duration:g}s to {shorter:g}s to end within "
                f"BENCH_DEADLINE",
                file=sys.stderr,
            )
            settings.duration = shorter
        print(
            f"bench: {load_runs} load runs of {settings.duration:g}s and {idle_runs} memory runs, "
            f"about {(fixed + load_runs * settings.duration) / 60:.1f} minutes; "
            f"deadline in {left / 60:.1f} minutes",
            file=sys.stderr,
        )

        def target(peer, test):
            """(port, pid, core) to load, or None when this peer cannot do the test."""
            https = TESTS[test][3]
            if peer == "backend direct":
                return backend_port, backend.pid, settings.backend_cpu
            if peer not in running or (test, peer) in UNSUPPORTED:
                return None
            process, http_port, https_port = running[peer]
            port = https_port if https else http_port
            return (port, process.pid, settings.proxy_cpu) if port else None

        # One short warm-up per peer and test (pools filled, caches hot).
        for test in settings.tests:
            if test == "idle-10k" or settings.warmup <= 0:
                continue
            for peer in settings.peers:
                found = target(peer, test)
                if found:
                    try:
                        run_wrk(settings, work, found[0], test, settings.warmup)
                    except Exception as error:
                        print(f"bench: warm-up {test} {peer}: {error}", file=sys.stderr)

        for round_index, test, peer in plan:
            if time.time() - settings.start > settings.deadline - settings.duration - 5:
                skipped += 1
                continue
            found = target(peer, test)
            if not found:
                continue
            port, pid, core = found
            try:
                if test == "idle-10k":
                    outcome = run_idle(settings, pid, port)
                    idle.setdefault(peer, []).append(outcome)
                    print(
                        f"bench: round {round_index + 1} {test:<12} {peer:<14} "
                        f"{outcome['rss_kib'] / 1024:8.1f} MiB",
                        file=sys.stderr,
                    )
                else:
                    outcome = run_wrk(settings, work, port, test, settings.duration, pid, core)
                    outcome["round"] = round_index
                    results.setdefault((test, peer), []).append(outcome)
                    print(
                        f"bench: round {round_index + 1} {test:<12} {peer:<14} {outcome['rps']:10,.0f} req/s "
                        f"p99 {'n/a' if outcome['p99_ms'] is None else format(outcome['p99_ms'], '.2f')} ms cpu {outcome['cpu'] * 100:.0f}% "
                        f"others {outcome['others'] * 100:.0f}% load core {outcome['load_core'] * 100:.0f}% "
                        f"{outcome['cpu'] / outcome['rps'] * 1e6:.1f} µs/request"
                        + (f" errors {outcome['errors']}" if outcome["errors"] else ""),
                        file=sys.stderr,
                    )
            except Exception as error:
                print(f"bench: round {round_index + 1} {test} {peer}: {error}", file=sys.stderr)
            time.sleep(0.5)

        notes = conditions(settings, load_before, load_average(), skipped, env("WHARF_COMMIT", ""))
        table = report(settings, results, idle, notes, DIRECT_TESTS, CEILING_TESTS)
        print(table)
        if settings.out:
            with open(settings.out, "w") as f:
                f.write(table + "\n")
            with open(settings.out + ".json", "w") as f:
                json.dump(
                    {"results": {f"{t}/{p}": r for (t, p), r in results.items()}, "idle": idle}, f, indent=1
                )
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()
        if settings.keep:
            print(f"bench: configs and logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
