"""The servers of the benchmark: start-up, readiness, and what /proc says about them.

One nginx backend with fixed answers, and the proxies in front of it (wharf,
nginx, HAProxy, Caddy), configured by configs.py. Every process is started
under taskset in its own session and stopped by pid (`Processes.stop_all`).
"""

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

from configs import (
    backend_config,
    caddy_config,
    forwarder_config,
    haproxy_config,
    make_tls,
    nginx_config,
    wharf_configs,
)

SMALL_BODY = b"hello, world\n"
PEERS = ["wharf", "nginx", "haproxy", "caddy"]
# Not a peer: HAProxy in TCP mode, for the ceiling of the load core.
FORWARDER = "L4 forwarder"


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

    def stop(self, process):
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

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


def cpu_times(pid):
    """(user, system) CPU seconds of `pid` and its children so far. System
    time includes the softirq work of the loopback packets the processes
    send, which the kernel does on their core while they run."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user / tick, system / tick


def core_busy(core):
    """Seconds CPU `core` was busy since boot, whichever processes it ran:
    user, nice, system, interrupts and softirqs (the loopback packets'
    receive work, a third of a core here). Idle and steal are left out."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                user, nice, system, _idle, _iowait, irq, softirq = (
                    int(x) for x in line.split()[1:8]
                )
                return (user + nice + system + irq + softirq) / tick
    return 0.0


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


def ports(settings):
    base = settings.port_base
    return {
        "backend": base,
        "nginx": (base + 1, base + 101),
        "haproxy": (base + 2, base + 102),
        "caddy": (base + 3, base + 103),
        "wharf": (base + 4, base + 104),
        FORWARDER: (base + 5, None),
    }


def start_peers(settings, processes, work):
    """Starts the backend and every peer; returns {peer: (process, http, https or None)}."""
    p = ports(settings)
    wanted = [p["backend"], p[FORWARDER][0]] + [port for peer in settings.peers for port in p[peer]]
    taken = [port for port in wanted if not port_free(port)]
    if taken:
        sys.exit(f"bench: ports {taken} on 127.0.0.1 are in use; set BENCH_PORT_BASE to another range")
    cert, key, combined = make_tls(work)
    backend = processes.start(
        "backend",
        ["nginx", "-p", work, "-e", f"{work}/backend.err", "-c", backend_config(work, p["backend"])],
        settings.backend_cpu,
        f"{work}/backend.log",
    )
    if not wait_ready(p["backend"], process=backend):
        sys.exit(f"bench: the backend did not start; see {work}/backend.err")

    running = {}
    for peer in settings.peers:
        http_port, https_port = p[peer]
        # wharf may offer several configs (with and without HTTPS): the first
        # one that serves plain HTTP is kept.
        for argv, extra in commands(settings, work, peer, p, cert, key, combined):
            process = processes.start(peer, argv, settings.proxy_cpu, f"{work}/{peer}.log", extra)
            if wait_ready(http_port, process=process):
                break
            processes.stop(process)
        else:
            print(
                f"bench: {peer} did not answer on {http_port}; its rows are left out (see {work}/{peer}.log)",
                file=sys.stderr,
            )
            continue
        tls_ok = wait_ready(https_port, https=True, within=5, process=process)
        if not tls_ok:
            print(
                f"bench: {peer} does not terminate TLS on {https_port}; its TLS rows are n/a", file=sys.stderr
            )
        running[peer] = (process, http_port, https_port if tls_ok else None)

    port = p[FORWARDER][0]
    config = forwarder_config(work, port, p["backend"])
    process = processes.start(
        FORWARDER, ["haproxy", "-db", "-f", config], settings.proxy_cpu, f"{work}/forwarder.log"
    )
    if wait_ready(port, process=process):
        running[FORWARDER] = (process, port, None)
    else:
        processes.stop(process)
        print(f"bench: the L4 forwarder did not start; no ceiling rows (see {work}/forwarder.log)", file=sys.stderr)
    return backend, running


def commands(settings, work, peer, p, cert, key, combined):
    """[(argv, extra environment)] to start `peer` with, in order of preference."""
    http_port, https_port = p[peer]
    if peer == "nginx":
        config = nginx_config(work, http_port, https_port, p["backend"], cert, key)
        return [(["nginx", "-p", work, "-e", f"{work}/nginx.err", "-c", config], {})]
    if peer == "haproxy":
        config = haproxy_config(work, http_port, https_port, p["backend"], combined)
        return [(["haproxy", "-db", "-f", config], {})]
    if peer == "caddy":
        config = caddy_config(work, http_port, https_port, p["backend"], cert, key)
        extra = {"GOMAXPROCS": "1", "XDG_DATA_HOME": work, "XDG_CONFIG_HOME": work, "HOME": work}
        return [(["caddy", "run", "--adapter", "caddyfile", "--config", config], extra)]
    return wharf_commands(settings, work, http_port, https_port, p["backend"], cert, key)


def wharf_commands(settings, work, http_port, https_port, backend, cert, key):
    """wharf with one worker thread, with each config this build accepts:
    HTTPS first, plain HTTP last (wharf without TLS yet: TLS rows are n/a)."""
    extra = {"WHARF_WORKERS": "1"}
    accepted = []
    for config in wharf_configs(work, http_port, https_port, backend, cert, key):
        check = subprocess.run(
            [settings.wharf_bin, "check", "-c", config],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if check.returncode == 0:
            accepted.append(([settings.wharf_bin, "run", "-c", config], extra))
    return accepted
