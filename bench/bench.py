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

`bench.py idle HOST PORT COUNT` is the idle-connection client used by the
memory test (run as its own process so it can be pinned like wrk).
"""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import http.client

SMALL_BODY = b"hello, world\n"
LARGE_SIZE = 64 * 1024
PEERS = ["wharf", "nginx", "haproxy", "caddy"]


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


# name -> (what, path, connections, https, extra wrk args)
TESTS = {
    "small-64": ("keep-alive, 13 B body, 64 connections", "/small", 64, False, []),
    "small-256": ("keep-alive, 13 B body, 256 connections", "/small", 256, False, []),
    "large-64": ("keep-alive, 64 KiB body, 64 connections", "/64k", 64, False, []),
    "tls-64": ("TLS keep-alive, 13 B body, 64 connections", "/small", 64, True, []),
    "handshake-64": (
        "new TLS connection per request (Connection: close), 64 at a time",
        "/small",
        64,
        True,
        ["-H", "Connection: close"],
    ),
    "idle-10k": ("memory with idle keep-alive connections", "/small", 0, False, []),
}
# The backend hit directly, for the tests where that means something.
DIRECT_TESTS = ["small-64", "small-256", "large-64"]

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


# ---------------------------------------------------------------- processes


class Processes:
    """Everything the benchmark started, stopped by pid at exit."""

    def __init__(self):
        self.started = []

    def start(self, name, argv, cpu, log, extra_env=None):
        environment = dict(os.environ)
        environment.update(extra_env or {})
        out = open(log, "ab")
        process = subprocess.Popen(
            ["taskset", "-c", str(cpu)] + argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
            start_new_session=True,
        )
        self.started.append((name, process))
        return process

    def stop_all(self):
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        end = time.time() + 5
        for _, process in self.started:
            try:
                process.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                # Kill the process group we created for it (its own workers).
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()


def tree(pid):
    """pid and all its descendants (nginx master and worker, say)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    result, queue = [], [pid]
    while queue:
        current = queue.pop()
        result.append(current)
        queue.extend(children.get(current, []))
    return result


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / tick


def port_free(port):
    with socket.socket() as s:
        # Like the servers do, so TIME_WAIT left by an earlier run is no obstacle.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def fetch(port, path, https=False, timeout=2.0):
    """(status, body) from 127.0.0.1:port, or raises."""
    if https:
        context = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(port, https=False, within=15.0, process=None):
    end = time.time() + within
    while time.time() < end:
        if process is not None and process.poll() is not None:
            return False
        try:
            status, body = fetch(port, "/small", https)
            if status == 200 and body == SMALL_BODY:
                return True
        except Exception:
            pass
        time.sleep(0.1)
    return False


# ------------------------------------------------------------------ configs


def ports(settings):
    base = settings.port_base
    return {
        "backend": base,
        "nginx": (base + 1, base + 101),
        "haproxy": (base + 2, base + 102),
        "caddy": (base + 3, base + 103),
        "wharf": (base + 4, base + 104),
    }


def make_tls(work):
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "7", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    combined = os.path.join(work, "combined.pem")
    with open(combined, "w") as out:
        out.write(open(cert).read() + open(key).read())
    for path in (cert, key, combined):
        os.chmod(path, 0o644)
    return cert, key, combined


def write(work, name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def backend_config(work, port):
    with open(os.path.join(work, "64k"), "wb") as f:
        f.write(b"x" * LARGE_SIZE)
    return write(work, "backend.conf", f"""
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid {work}/backend.pid;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    error_log {work}/backend.err warn;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    sendfile on;
    open_file_cache max=16;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /small {{ return 200 "hello, world\\n"; }}
        location = /64k {{ root {work}; }}
    }}
}}
""")


def nginx_config(work, http_port, https_port, backend, cert, key):
    return write(work, "nginx.conf", f"""
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid {work}/nginx.pid;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    error_log {work}/nginx.err warn;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    upstream backend {{
        server 127.0.0.1:{backend};
        keepalive 1024;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{http_port} backlog=4096;
        listen 127.0.0.1:{https_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
""")


def haproxy_config(work, http_port, https_port, backend, combined):
    return write(work, "haproxy.cfg", f"""
global
    nbthread 1
    maxconn 10500
    # Hard descriptor limits are often 20000: enough for 10,000 clients plus
    # the upstream pool, but short of HAProxy's reservation of 2 per maxconn.
    no strict-limits
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option forwardfor
    http-reuse safe
frontend proxy
    bind 127.0.0.1:{http_port}
    bind 127.0.0.1:{https_port} ssl crt {combined}
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    default_backend app
backend app
    server backend 127.0.0.1:{backend} pool-max-conn 1024
""")


def caddy_config(work, http_port, https_port, backend, cert, key):
    proxy = f"""reverse_proxy 127.0.0.1:{backend} {{
        transport http {{
            keepalive 90s
            keepalive_idle_conns 1024
            keepalive_idle_conns_per_host 1024
        }}
    }}"""
    return write(work, "Caddyfile", f"""
{{
    admin off
    auto_https off
    default_bind 127.0.0.1
}}
http://:{http_port} {{
    {proxy}
}}
https://:{https_port} {{
    tls {cert} {key}
    {proxy}
}}
""")


def wharf_config(work, http_port, https_port, backend, cert, key, with_tls):
    https = f'https = ["127.0.0.1:{https_port}"]\n' if with_tls else ""
    tls = f'[tls]\nmode = "files"\ncert = "{cert}"\nkey = "{key}"\n' if with_tls else ""
    return write(work, "wharf-tls.toml" if with_tls else "wharf.toml", f"""
[server]
listen = ["127.0.0.1:{http_port}"]
{https}admin = "off"

[log]
access = "off"
level = "warn"

{tls}
[[site]]
  [[site.route]]
  path = "/"
  upstream = "backend"

[upstream.backend]
servers = ["127.0.0.1:{backend}"]
""")


def start_peers(settings, processes, work):
    """Starts the backend and every peer; returns {peer: (process, http, https or None)}."""
    p = ports(settings)
    wanted = [p["backend"]] + [port for peer in settings.peers for port in p[peer]]
    taken = [port for port in wanted if not port_free(port)]
    if taken:
        sys.exit(f"bench: ports {taken} on 127.0.0.1 are in use; set BENCH_PORT_BASE to another range")
    cert, key, combined = make_tls(work)
    backend = processes.start(
        "backend", ["nginx", "-p", work, "-e", f"{work}/backend.err", "-c", backend_config(work, p["backend"])],
        settings.backend_cpu, f"{work}/backend.log")
    if not wait_ready(p["backend"], process=backend):
        sys.exit(f"bench: the backend did not start; see {work}/backend.err")

    running = {}
    for peer in settings.peers:
        http_port, https_port = p[peer]
        extra = {}
        if peer == "nginx":
            argv = ["nginx", "-p", work, "-e", f"{work}/nginx.err",
                    "-c", nginx_config(work, http_port, https_port, p["backend"], cert, key)]
        elif peer == "haproxy":
            argv = ["haproxy", "-db", "-f", haproxy_config(work, http_port, https_port, p["backend"], combined)]
        elif peer == "caddy":
            argv = ["caddy", "run", "--adapter", "caddyfile",
                    "--config", caddy_config(work, http_port, https_port, p["backend"], cert, key)]
            extra = {"GOMAXPROCS": "1", "XDG_DATA_HOME": work, "XDG_CONFIG_HOME": work, "HOME": work}
        else:
            argv, extra = wharf_argv(settings, work, http_port, https_port, p["backend"], cert, key)
        process = processes.start(peer, argv, settings.proxy_cpu, f"{work}/{peer}.log", extra)
        if not wait_ready(http_port, process=process):
            print(f"bench: {peer} did not answer on {http_port}; its rows are left out (see {work}/{peer}.log)",
                  file=sys.stderr)
            continue
        tls_ok = wait_ready(https_port, https=True, within=5, process=process)
        if not tls_ok:
            print(f"bench: {peer} does not terminate TLS on {https_port}; its TLS rows are n/a", file=sys.stderr)
        running[peer] = (process, http_port, https_port if tls_ok else None)
    return backend, running


def wharf_argv(settings, work, http_port, https_port, backend, cert, key):
    """wharf with HTTPS when this build accepts the [tls] files config, else plain HTTP."""
    extra = {"WHARF_WORKERS": "1"}
    with_tls = wharf_config(work, http_port, https_port, backend, cert, key, True)
    check = subprocess.run([settings.wharf_bin, "check", "-c", with_tls],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check.returncode == 0:
        return [settings.wharf_bin, "run", "-c", with_tls], extra
    print("bench: this wharf build does not accept [tls] mode = \"files\" yet; TLS rows are n/a",
          file=sys.stderr)
    plain = wharf_config(work, http_port, https_port, backend, cert, key, False)
    return [settings.wharf_bin, "run", "-c", plain], extra


# -------------------------------------------------------------------- tests


def run_wrk(settings, work, port, test, duration, pid=None):
    _, path, connections, https, extra = TESTS[test]
    scheme = "https" if https else "http"
    script = os.path.join(work, "report.lua")
    argv = ["taskset", "-c", str(settings.load_cpu), "wrk", "-t1", f"-c{connections}",
            f"-d{max(1, round(duration))}s", "--timeout", "5s", "-s", script] + extra + [
            f"{scheme}://127.0.0.1:{port}{path}"]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    wall_before = time.time()
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=duration + 30)
    wall = time.time() - wall_before
    cpu = (cpu_seconds(pid) - cpu_before) / wall if pid else None
    for line in result.stdout.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            errors = data["connect"] + data["read"] + data["write"] + data["status"] + data["timeout"]
            return {
                "rps": data["requests"] / (data["duration_us"] / 1e6),
                "p50_ms": data["p50_us"] / 1000,
                "p99_ms": data["p99_us"] / 1000,
                "errors": errors,
                "requests": data["requests"],
                "cpu": cpu,
            }
    raise RuntimeError(f"wrk gave no report: {result.stdout.strip()[-500:]}")


def run_idle(settings, pid, port):
    """Memory of the proxy with N idle keep-alive connections, each having sent one request."""
    before = rss_kib(pid)
    client = subprocess.Popen(
        ["taskset", "-c", str(settings.load_cpu), sys.executable, os.path.abspath(__file__),
         "idle", "127.0.0.1", str(port), str(settings.idle_connections)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = ""
        end = time.time() + 60
        while time.time() < end:
            line = client.stdout.readline()
            if not line or line.startswith("ready") or line.startswith("failed"):
                break
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
    return {"rss_before_kib": before, "rss_kib": during, "opened": opened,
            "per_conn_kib": (during - before) / max(1, opened)}


async def idle_client(host, port, count):
    request = f"GET /small HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    writers = []
    gate = asyncio.Semaphore(200)

    async def one():
        async with gate:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            writers.append(writer)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"failed {len(failures)} of {count}: {failures[0]!r}", flush=True)
    else:
        print(f"ready {len(writers)}", flush=True)
    # Hold the connections until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in writers:
        writer.close()


# ------------------------------------------------------------------- report


def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def report(settings, results, idle, notes):
    lines = []
    lines.append(f"conditions: {notes}")
    lines.append("")
    lines.append("| test | server | req/s (median) | min–max | p50 ms | p99 ms | proxy CPU | vs nginx |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for test in settings.tests:
        if test == "idle-10k":
            continue
        rows = list(settings.peers) + (["backend direct"] if test in DIRECT_TESTS else [])
        nginx_rps = median([r["rps"] for r in results.get((test, "nginx"), [])])
        for peer in rows:
            runs = results.get((test, peer))
            if not runs:
                lines.append(f"| {test} | {peer} | n/a | | | | | |")
                continue
            rps = median([r["rps"] for r in runs])
            span = f"{fmt(min(r['rps'] for r in runs))}–{fmt(max(r['rps'] for r in runs))}"
            cpu = median([r["cpu"] for r in runs if r["cpu"] is not None])
            ratio = f"{rps / nginx_rps:.2f}×" if nginx_rps and peer != "nginx" else ("1.00×" if peer == "nginx" else "")
            errors = sum(r["errors"] for r in runs)
            flag = f" ({errors} errors)" if errors else ""
            lines.append(
                f"| {test} | {peer} | {fmt(rps)}{flag} | {span} | {fmt(median([r['p50_ms'] for r in runs]), 2)} "
                f"| {fmt(median([r['p99_ms'] for r in runs]), 2)} | {fmt(cpu * 100 if cpu is not None else None)}% "
                f"| {ratio} |")
    if "idle-10k" in settings.tests:
        lines.append("")
        lines.append(f"| memory, {settings.idle_connections:,} idle keep-alive connections | server "
                     f"| RSS before (MiB) | RSS with connections (MiB, median) | KiB per connection | vs nginx |")
        lines.append("|---|---|---:|---:|---:|---:|")
        nginx_rss = median([r["rss_kib"] for r in idle.get("nginx", [])])
        for peer in settings.peers:
            runs = idle.get(peer)
            if not runs:
                lines.append(f"| idle-10k | {peer} | n/a | n/a | n/a | |")
                continue
            rss = median([r["rss_kib"] for r in runs])
            ratio = f"{rss / nginx_rss:.2f}×" if nginx_rss else ""
            lines.append(
                f"| idle-10k | {peer} | {fmt(runs[0]['rss_before_kib'] / 1024, 1)} | {fmt(rss / 1024, 1)} "
                f"| {fmt(median([r['per_conn_kib'] for r in runs]), 1)} | {ratio} |")
    return "\n".join(lines)


# --------------------------------------------------------------------- main


def main():
    settings = Settings()
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
            order = settings.peers[round_index % len(settings.peers):] + settings.peers[:round_index % len(settings.peers)]
            for test in settings.tests:
                targets = order + (["backend direct"] if test in DIRECT_TESTS else [])
                for peer in targets:
                    plan.append((round_index, test, peer))
        load_runs = sum(1 for _, test, _ in plan if test != "idle-10k")
        idle_runs = len(plan) - load_runs
        estimate = load_runs * (settings.duration + 0.7) + idle_runs * 6 + \
            len(settings.peers) * len(settings.tests) * (settings.warmup + 0.5)
        left = settings.deadline - (time.time() - settings.start)
        print(f"bench: {load_runs} load runs of {settings.duration:g}s and {idle_runs} memory runs, "
              f"about {estimate / 60:.1f} minutes; deadline in {left / 60:.1f} minutes", file=sys.stderr)

        def target(peer, test):
            """(port, pid) to load, or None when this peer cannot do the test."""
            https = TESTS[test][3]
            if peer == "backend direct":
                return backend_port, backend.pid
            if peer not in running:
                return None
            process, http_port, https_port = running[peer]
            port = https_port if https else http_port
            return (port, process.pid) if port else None

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
            port, pid = found
            try:
                if test == "idle-10k":
                    outcome = run_idle(settings, pid, port)
                    idle.setdefault(peer, []).append(outcome)
                    print(f"bench: round {round_index + 1} {test:<12} {peer:<14} "
                          f"{outcome['rss_kib'] / 1024:8.1f} MiB", file=sys.stderr)
                else:
                    outcome = run_wrk(settings, work, port, test, settings.duration, pid)
                    results.setdefault((test, peer), []).append(outcome)
                    print(f"bench: round {round_index + 1} {test:<12} {peer:<14} {outcome['rps']:10,.0f} req/s "
                          f"p99 {outcome['p99_ms']:.2f} ms cpu {outcome['cpu'] * 100:.0f}%"
                          + (f" errors {outcome['errors']}" if outcome["errors"] else ""), file=sys.stderr)
            except Exception as error:
                print(f"bench: round {round_index + 1} {test} {peer}: {error}", file=sys.stderr)
            time.sleep(0.5)

        versions = peer_versions(settings)
        notes = (f"{os.cpu_count()} CPUs ({cpu_model()}), proxy pinned to CPU {settings.proxy_cpu}, "
                 f"wrk -t1 on CPU {settings.load_cpu}, backend (nginx, 1 worker) on CPU {settings.backend_cpu}; "
                 f"{settings.repeats} rounds of {settings.duration:g}s per run; {versions}")
        if skipped:
            notes += f"; {skipped} runs skipped to stay within BENCH_DEADLINE"
        table = report(settings, results, idle, notes)
        print(table)
        if settings.out:
            with open(settings.out, "w") as f:
                f.write(table + "\n")
            with open(settings.out + ".json", "w") as f:
                json.dump({"results": {f"{t}/{p}": r for (t, p), r in results.items()}, "idle": idle}, f, indent=1)
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


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def peer_versions(settings):
    def first_line(argv):
        try:
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
            return out.stdout.strip().splitlines()[0]
        except Exception:
            return "?"

    nginx = first_line(["nginx", "-v"]).replace("nginx version: ", "")
    haproxy = first_line(["haproxy", "-v"]).split(" - ")[0].replace("HAProxy version ", "haproxy/")
    caddy = "caddy/" + first_line(["caddy", "version"]).split()[0]
    wharf = first_line([settings.wharf_bin, "--version"]).replace(" ", "/")
    return ", ".join([wharf, nginx, haproxy, caddy])


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "idle":
        asyncio.run(idle_client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    else:
        sys.exit(main())
