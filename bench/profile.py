#!/usr/bin/env python3
"""Where each proxy's core goes under load, and wharf's instructions per request.

Started by bench/profile.sh (which installs perf, valgrind and inferno when
they are missing); see docs/performance.md, "Profiling". Two modes:

- `cores` (the default): for each peer in BENCH_PEERS (default wharf and
  nginx), pinned as in bench.py, a warm-up and then PROFILE_ROUNDS (3) load
  runs of PROFILE_DURATION (6s) of PROFILE_TEST (default small-64), the
  peers' order rotated every round, while `perf record` samples the whole
  proxy core (the proxy's own code, the
  kernel's work in its system calls and loopback softirqs, and the time the
  core sits idle waiting for the load core). Call stacks are unwound from
  DWARF, so a release build without frame pointers still gives whole
  stacks. It prints, for every peer, the rate, the CPU per request split
  into user and system time, the share of the core's samples by where they
  fell, the core's time per request by what it was doing (sending,
  receiving, waiting in epoll_wait, other system calls, user space, idle),
  and the top symbols; and it writes a flamegraph per peer (PEER.svg,
  drawn by inferno from all rounds) and perf's report (PEER.txt) into
  PROFILE_OUT.
- `instructions`: wharf under callgrind (valgrind), a fixed number of
  keep-alive HTTP/1.1 requests (`h2load --h1 -c64`) twice, 20,000 and
  40,000; the difference over 20,000 is the user-space instructions per
  request, start-up and warm-up left out. This count hardly moves from run
  to run where the CPU time of a run moves by 20% on a shared VM, so it
  shows changes of 1-2%. It prints the top functions of the larger run
  (`callgrind_annotate`) and keeps its profile in PROFILE_OUT.

Everything runs on 127.0.0.1, every load run has a fixed length or count
and a timeout, and every process started is stopped at exit.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from bench import TESTS, WRK_REPORT, Settings, env, run_wrk, seconds
from configs import make_tls, wharf_configs, write
from peers import Processes, port_free, ports, start_peers, wait_ready

# The idle task's name in perf's samples: the core sitting idle.
IDLE_COMMANDS = ("swapper",)


def perf_record(settings, data, delay, length, errors):
    """Samples the whole proxy core for `length` seconds after `delay`;
    what perf said on failure goes to `errors`."""
    time.sleep(delay)
    result = subprocess.run(
        [
            "perf",
            "record",
            "-q",
            "-C",
            str(settings.proxy_cpu),
            "-e",
            "cpu-clock",
            "-F",
            env("PROFILE_FREQUENCY", "499"),
            "--call-graph",
            "dwarf,16384",
            "-o",
            data,
            "--",
            "sleep",
            f"{length:g}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=length + 60,
    )
    if result.returncode != 0 or not os.path.exists(data):
        errors.append(result.stderr.strip()[-500:] or f"perf record exited with {result.returncode}")


def perf_report(data, sort):
    """[(percent, fields...)] of `perf report --sort sort`, no call graphs."""
    result = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio", "-q", "-g", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        timeout=300,
    )
    rows = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if not parts or not parts[0].endswith("%"):
            continue
        try:
            rows.append((float(parts[0].rstrip("%")), parts[1:]))
        except ValueError:
            continue
    return rows


def shares(data, proxy_commands, proxy_binary):
    """The proxy core's samples by where they fell, in percent."""
    out = {"kernel": 0.0, "own code": 0.0, "libc": 0.0, "vDSO": 0.0, "other libraries": 0.0, "idle": 0.0, "other processes": 0.0}
    for percent, fields in perf_report(data, "comm,dso"):
        if len(fields) < 2:
            continue
        command, dso = fields[0], " ".join(fields[1:])
        if command.startswith(IDLE_COMMANDS):
            out["idle"] += percent
        elif not any(command.startswith(name[:15]) for name in proxy_commands):
            out["other processes"] += percent
        elif dso == "[kernel.kallsyms]":
            out["kernel"] += percent
        elif dso == proxy_binary:
            out["own code"] += percent
        elif dso.startswith("libc.so"):
            out["libc"] += percent
        elif dso == "[vdso]":
            out["vDSO"] += percent
        else:
            out["other libraries"] += percent
    return out


def fold(data, folded):
    """The samples as folded stacks (one line per stack and its weight),
    through inferno; False when inferno is missing."""
    collapse = shutil.which("inferno-collapse-perf")
    if not collapse:
        return False
    script = subprocess.Popen(
        ["perf", "script", "-i", data, "--no-inline"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    with open(folded, "wb") as f:
        subprocess.run([collapse], stdin=script.stdout, stdout=f, timeout=600)
    script.wait(60)
    return True


def flamegraph(folded, svg, title):
    """PEER.svg from the folded stacks, drawn by inferno."""
    draw = shutil.which("inferno-flamegraph")
    if not draw:
        return False
    with open(folded, "rb") as f, open(svg, "wb") as out:
        subprocess.run([draw, "--title", title, "--minwidth", "0.2"], stdin=f, stdout=out, timeout=120, check=True)
    return True


# Where a stack's time went, by the first of these kernel functions in it.
PARTS = [
    ("sending (tcp_sendmsg: the loopback delivery to the receiver included)", ("tcp_sendmsg",)),
    ("receiving (tcp_recvmsg)", ("tcp_recvmsg",)),
    ("waiting for events (epoll_wait)", ("do_epoll_wait", "ep_poll")),
    ("other system calls", ("entry_SYSCALL_64", "do_syscall_64")),
]


def parts(folded, proxy_commands):
    """{part: share of the core's samples} from folded stacks."""
    total, found = 0, {}
    with open(folded) as f:
        for line in f:
            stack, _, weight = line.rstrip("\n").rpartition(" ")
            try:
                n = int(weight)
            except ValueError:
                continue
            total += n
            frames = stack.split(";")
            if frames[0].startswith(IDLE_COMMANDS):
                part = "idle"
            elif not any(frames[0].startswith(name[:15]) for name in proxy_commands):
                part = "other processes"
            else:
                part = next(
                    (name for name, marks in PARTS if any(mark in frames for mark in marks)),
                    "user space (and interrupts taken there)",
                )
            found[part] = found.get(part, 0) + n
    return {part: n / total for part, n in found.items()} if total else {}


def binary_name(settings, peer, pid):
    """The name perf gives the proxy's binary, and the process names it runs under."""
    if peer == "wharf":
        name = os.path.basename(settings.wharf_bin)
        return name, [name]
    try:
        name = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        name = peer
    return name, [name, peer]


def cores(settings, out):
    test = env("PROFILE_TEST", "small-64")
    if test not in TESTS or test == "idle-10k":
        known = ", ".join(t for t in TESTS if t != "idle-10k")
        sys.exit(f"profile: unknown PROFILE_TEST {test!r}; known: {known}")
    duration = seconds(env("PROFILE_DURATION", "6s"))
    if duration < 4:
        sys.exit("profile: PROFILE_DURATION must be at least 4s (one second either side is not sampled)")
    rounds = int(env("PROFILE_ROUNDS", "3"))
    if not shutil.which("perf"):
        sys.exit("profile: perf is missing; bench/profile.sh installs it (Debian linux-perf)")
    work = tempfile.mkdtemp(prefix="wharf-profile-")
    os.chmod(work, 0o755)
    write(work, "report.lua", WRK_REPORT)
    processes = Processes()
    # peer -> [(outcome, shares, per-request split, top symbols)], one per round
    measured = {}
    drawn = {}
    try:
        _backend, running = start_peers(settings, processes, work)
        peers = [peer for peer in settings.peers if peer in running]
        for peer in peers:
            port = running[peer][2] if TESTS[test][3] else running[peer][1]
            if port:
                run_wrk(settings, work, port, test, settings.warmup or 1)
        # Rounds, the peers' order rotated, as in bench.py: the VM's speed
        # drifts from minute to minute, and one run each would compare
        # moments as much as proxies.
        for round_index in range(rounds):
            order = peers[round_index % len(peers) :] + peers[: round_index % len(peers)] if peers else []
            for peer in order:
                process, http_port, https_port = running[peer]
                port = https_port if TESTS[test][3] else http_port
                if not port:
                    continue
                data = os.path.join(out, f"{peer}.{round_index + 1}.perf.data")
                errors = []
                sampler = threading.Thread(
                    target=perf_record, args=(settings, data, 1.0, duration - 2.0, errors)
                )
                sampler.start()
                outcome = run_wrk(settings, work, port, test, duration, process.pid, settings.proxy_cpu)
                sampler.join()
                if errors:
                    sys.exit(f"profile: perf could not sample CPU {settings.proxy_cpu}: {errors[0]}")
                binary, commands = binary_name(settings, peer, process.pid)
                found = shares(data, commands, binary)
                top = {" ".join(fields): percent for percent, fields in perf_report(data, "sym") if len(fields) > 1}
                folded = os.path.join(out, f"{peer}.{round_index + 1}.folded")
                split = parts(folded, commands) if fold(data, folded) else {}
                measured.setdefault(peer, []).append((outcome, found, split, top))
                print(
                    f"profile: round {round_index + 1} {peer}: {outcome['rps']:,.0f} req/s, "
                    f"{outcome['cpu'] / outcome['rps'] * 1e6:.1f} µs/request",
                    file=sys.stderr,
                )
        for peer in measured:
            if merge_folded(out, peer, rounds):
                drawn[peer] = flamegraph(
                    os.path.join(out, f"{peer}.folded"),
                    os.path.join(out, f"{peer}.svg"),
                    f"{peer}, {test}: the proxy core ({rounds} runs of {duration:g}s)",
                )
            last = os.path.join(out, f"{peer}.{len(measured[peer])}.perf.data")
            with open(os.path.join(out, f"{peer}.txt"), "w") as f:
                subprocess.run(
                    ["perf", "report", "-i", last, "--no-children", "--sort", "comm,dso,sym", "--stdio", "-g", "none"],
                    stdout=f,
                    stderr=subprocess.DEVNULL,
                    timeout=300,
                )
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    summarize(test, duration, rounds, measured, drawn, out)


def merge_folded(out, peer, rounds):
    """PEER.folded: the folded stacks of all its rounds, summed."""
    total = {}
    for round_index in range(rounds):
        path = os.path.join(out, f"{peer}.{round_index + 1}.folded")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                stack, _, weight = line.rstrip("\n").rpartition(" ")
                if weight.isdigit():
                    total[stack] = total.get(stack, 0) + int(weight)
    if not total:
        return False
    with open(os.path.join(out, f"{peer}.folded"), "w") as f:
        for stack, weight in sorted(total.items()):
            f.write(f"{stack} {weight}\n")
    return True


def summarize(test, duration, rounds, measured, drawn, out):
    """The table: each figure over all rounds of a peer (rates and CPU
    summed over the runs, shares averaged)."""
    peers = list(measured)

    def per_request(runs, seconds_of):
        """µs per request over all runs: sum of core seconds / sum of requests."""
        requests = sum(o["requests"] for o, *_ in runs)
        return sum(seconds_of(o, f, s) * o["requests"] / o["rps"] for o, f, s, _ in runs) / requests * 1e6

    def mean(values):
        values = list(values)
        return sum(values) / len(values) if values else 0.0

    print(f"# The proxy core under {test} ({TESTS[test][0]}), {rounds} rounds of {duration:g}s per peer\n")
    print("| | " + " | ".join(peers) + " |")
    print("|---|" + "---:|" * len(peers))
    rows = [
        ("req/s (median of the rounds)", lambda r: f"{sorted(o['rps'] for o, *_ in r)[len(r) // 2]:,.0f}"),
        ("CPU µs/request", lambda r: f"{per_request(r, lambda o, f, s: o['cpu']):.1f}"),
        ("  user", lambda r: f"{per_request(r, lambda o, f, s: o['user']):.1f}"),
        ("  system", lambda r: f"{per_request(r, lambda o, f, s: o['cpu'] - o['user']):.1f}"),
        (
            "p99 ms (median)",
            lambda r: "n/a"
            if r[0][0]["p99_ms"] is None
            else f"{sorted(o['p99_ms'] for o, *_ in r)[len(r) // 2]:.2f}",
        ),
        ("load core busy", lambda r: f"{mean(o['load_core'] for o, *_ in r) * 100:.0f}%"),
    ]
    for kind in ("kernel", "own code", "libc", "vDSO", "other libraries", "idle", "other processes"):
        rows.append((f"samples: {kind}", lambda r, kind=kind: f"{mean(f[kind] for _, f, _, _ in r):.1f}%"))
    # The core's time per request by what it did, from the call stacks: a
    # share of the sampled core times the core's seconds per request.
    names = [name for name, _ in PARTS] + ["user space (and interrupts taken there)", "idle", "other processes"]
    for name in names:
        rows.append(
            (
                f"core µs/request: {name}",
                lambda r, name=name: "n/a"
                if not all(s for _, _, s, _ in r)
                else f"{per_request(r, lambda o, f, s: s.get(name, 0.0)):.2f}",
            )
        )
    for name, cell in rows:
        print(f"| {name} | " + " | ".join(cell(measured[peer]) for peer in peers) + " |")
    for peer in peers:
        runs = measured[peer]
        symbols = {}
        for *_, top in runs:
            for symbol, percent in top.items():
                symbols[symbol] = symbols.get(symbol, 0.0) + percent / len(runs)
        print(f"\n{peer}, top symbols of the proxy core ([k] kernel, [.] user space):\n")
        for symbol, percent in sorted(symbols.items(), key=lambda item: -item[1])[:12]:
            print(f"    {percent:5.2f}%  {symbol}")
        where = os.path.join(out, f"{peer}.svg") if drawn.get(peer) else "not drawn (inferno is missing)"
        print(f"\n    flamegraph: {where}; perf's report of the last round: {os.path.join(out, peer + '.txt')}")


def callgrind_run(settings, config, out, requests, url):
    """Instructions wharf ran (all of its threads) while serving `requests`."""
    profile = os.path.join(out, f"callgrind.{requests}.out")
    log = os.path.join(out, f"valgrind.{requests}.log")
    process = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(settings.proxy_cpu),
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={profile}",
            f"--log-file={log}",
            settings.wharf_bin,
            "run",
            "-c",
            config,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, WHARF_WORKERS="1"),
        start_new_session=True,
    )
    try:
        port = ports(settings)["wharf"][0]
        if not wait_ready(port, within=60, process=process):
            raise RuntimeError(f"wharf under valgrind did not answer on {port}; see {log}")
        load = subprocess.run(
            ["taskset", "-c", str(settings.load_cpu), "h2load", "--h1", "-t1", "-c64", f"-n{requests}", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        if f"{requests} succeeded" not in load.stdout:
            raise RuntimeError(f"h2load did not get {requests} answers: {load.stdout.strip()[-400:]}")
    finally:
        process.send_signal(2)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with open(log) as f:
        for line in f:
            if "Collected :" in line:
                return int(line.split(":")[-1].strip().replace(",", "")), profile
    raise RuntimeError(f"valgrind wrote no total; see {log}")


def instructions(settings, out):
    for tool in ("valgrind", "callgrind_annotate", "h2load"):
        if not shutil.which(tool):
            sys.exit(f"profile: {tool} is missing; bench/profile.sh installs it")
    work = tempfile.mkdtemp(prefix="wharf-profile-")
    os.chmod(work, 0o755)
    processes = Processes()
    settings.peers = []
    try:
        start_peers(settings, processes, work)
        p = ports(settings)
        http_port, https_port = p["wharf"]
        if not port_free(http_port):
            sys.exit(f"profile: port {http_port} on 127.0.0.1 is in use; set BENCH_PORT_BASE to another range")
        cert, key, _combined = make_tls(work)
        configs = wharf_configs(work, http_port, https_port, p["backend"], cert, key)
        config = configs[-1]  # plain HTTP: the fast path, no TLS
        url = f"http://127.0.0.1:{http_port}/small"
        small, _ = callgrind_run(settings, config, out, 20000, url)
        large, profile = callgrind_run(settings, config, out, 40000, url)
    finally:
        processes.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    per_request = (large - small) / 20000
    print("# wharf's user-space instructions per request (callgrind)\n")
    print(f"- 20,000 requests: {small:,} instructions; 40,000: {large:,}")
    print(f"- per request (the difference over 20,000): {per_request:,.0f}")
    print(f"- the 40,000-request profile: {profile}\n")
    annotate = subprocess.run(
        ["callgrind_annotate", profile], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=120
    )
    lines = [line for line in annotate.stdout.splitlines() if "(" in line and "%)" in line]
    print("Top functions of the 40,000-request run (instructions, share):\n")
    for line in lines[:26]:
        # "   53,761,369 ( 8.42%)  ???:httparse::parse_headers_iter_uninit [/path/wharf]"
        count, _, rest = line.strip().partition("  ")
        rest = rest.strip().removeprefix("???:").rsplit(" [", 1)[0]
        print(f"    {count:>24}  {rest[:130]}")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "cores"
    if mode not in ("cores", "instructions"):
        sys.exit(f"profile: unknown mode {mode!r}; use cores (the default) or instructions")
    if "BENCH_PEERS" not in os.environ:
        os.environ["BENCH_PEERS"] = "wharf,nginx"
    settings = Settings()
    out = os.path.abspath(env("PROFILE_OUT", f"profile-{time.strftime('%Y%m%d-%H%M%S')}"))
    os.makedirs(out, exist_ok=True)
    if not os.access(settings.wharf_bin, os.X_OK):
        sys.exit(f"profile: no wharf binary at {settings.wharf_bin}; set WHARF_BIN or run bench/profile.sh")
    try:
        if mode == "cores":
            cores(settings, out)
        else:
            instructions(settings, out)
    except KeyboardInterrupt:
        print("profile: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
