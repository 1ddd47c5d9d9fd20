"""The tables bench.py prints: medians over rounds, ratios to nginx, conditions."""

import os
import statistics
import subprocess


def median(values):
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def percent(share):
    return "n/a" if share is None else f"{share * 100:.0f}%"


def cpu_per_request(run):
    """Microseconds of the server's CPU per request in one run (its processes'
    user and system time, which includes the softirq work of the loopback
    packets handled while they run). Unlike req/s, this hardly moves when
    other processes share the machine."""
    if run["cpu"] is None or not run["rps"]:
        return None
    return run["cpu"] / run["rps"] * 1e6


def user_per_request(run):
    """Microseconds of the server's user-space CPU per request in one run."""
    if run.get("user") is None or not run["rps"]:
        return None
    return run["user"] / run["rps"] * 1e6


def latency(runs, key):
    """The median of a latency over runs, or None when the load generator
    gives none (h2load)."""
    return median([r[key] for r in runs if r.get(key) is not None])


def ratio(value, reference):
    return f"{value / reference:.2f}×" if value and reference else ""


FORWARDER = "L4 forwarder"  # peers.FORWARDER


def paired_ratio(runs, reference_runs):
    """The median over rounds of a server's req/s divided by nginx's in the
    same round. Rounds run minutes apart, so when the machine's speed drifts
    (a busy host slows every server in a round alike) this ratio moves less
    than the ratio of the two medians."""
    by_round = {r["round"]: r["rps"] for r in reference_runs if r.get("round") is not None}
    ratios = [r["rps"] / by_round[r["round"]] for r in runs if by_round.get(r.get("round"))]
    return median(ratios)


def drift(results, direct_tests):
    """A line saying how much the machine's speed moved between rounds, from
    the backend hit directly (no proxy involved), when it moved by more
    than a tenth."""
    lines = []
    for test in direct_tests:
        runs = results.get((test, "backend direct"), [])
        if len(runs) < 2:
            continue
        low, high = min(r["rps"] for r in runs), max(r["rps"] for r in runs)
        if low and high / low > 1.1:
            lines.append(
                f"- {test}: the backend hit directly, with no proxy involved, went from {fmt(low)} to "
                f"{fmt(high)} req/s between rounds ({high / low:.2f}×): the machine's speed moved, so "
                "compare the same-round ratios and CPU per request rather than single rows."
            )
    return lines


def report(settings, results, idle, notes, direct_tests, ceiling_tests=()):
    lines = [f"conditions: {notes}", ""]
    lines.append(
        "| test | server | req/s (median) | min–max | p50 ms | p99 ms | server CPU | others on its CPU "
        "| CPU µs/request | vs nginx, req/s | vs nginx, req/s, same round | vs nginx, CPU/request "
        "| load core busy |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for test in settings.tests:
        if test == "idle-10k":
            continue
        rows = list(settings.peers) + (["backend direct"] if test in direct_tests else [])
        rows += [FORWARDER] if test in ceiling_tests and results.get((test, FORWARDER)) else []
        nginx_runs = results.get((test, "nginx"), [])
        nginx_rps = median([r["rps"] for r in nginx_runs])
        nginx_cost = median([c for c in map(cpu_per_request, nginx_runs) if c is not None])
        for peer in rows:
            runs = results.get((test, peer))
            if not runs:
                lines.append(f"| {test} | {peer} | n/a | | | | | | | | | | |")
                continue
            rps = median([r["rps"] for r in runs])
            span = f"{fmt(min(r['rps'] for r in runs))}–{fmt(max(r['rps'] for r in runs))}"
            cpu = median([r["cpu"] for r in runs if r["cpu"] is not None])
            others = median([r["others"] for r in runs if r["others"] is not None])
            load_core = median([r["load_core"] for r in runs if r.get("load_core") is not None])
            cost = median([c for c in map(cpu_per_request, runs) if c is not None])
            paired = paired_ratio(runs, nginx_runs)
            errors = sum(r["errors"] for r in runs)
            flag = f" ({errors} errors)" if errors else ""
            lines.append(
                f"| {test} | {peer} | {fmt(rps)}{flag} | {span} | {fmt(latency(runs, 'p50_ms'), 2)} "
                f"| {fmt(latency(runs, 'p99_ms'), 2)} | {percent(cpu)} | {percent(others)} "
                f"| {fmt(cost, 1)} | {ratio(rps, nginx_rps)} | {f'{paired:.2f}×' if paired else ''} "
                f"| {ratio(nginx_cost, cost) if cost else ''} | {percent(load_core)} |"
            )
    lines.append("")
    moved = drift(results, direct_tests)
    if moved:
        lines += moved + [""]
    lines += cpu_split_table(settings, results)
    lines += direct_budget(settings, results, direct_tests)
    lines += ceiling(settings, results, ceiling_tests)
    if "idle-10k" in settings.tests:
        lines.append("")
        lines += memory_table(settings, idle)
    return "\n".join(lines)


def cpu_split_table(settings, results, goal=1.2):
    """Each server's CPU per request split into user and kernel time
    (medians over rounds), and what wharf may spend per request to serve
    `goal` times nginx's requests per second on one core.

    On loopback most of a proxy's time per request is the kernel's TCP work
    for the same four packets and system calls, which every proxy pays; the
    last column is what that leaves for wharf's own code."""
    peers = list(settings.peers)
    lines = [
        "| CPU µs/request, user + kernel | " + " | ".join(peers)
        + f" | {goal:g}× nginx's rate needs ≤ (µs/request) | wharf's user time that leaves (at its kernel time) |",
        "|---|" + "---:|" * (len(peers) + 2),
    ]
    for test in settings.tests:
        if test == "idle-10k":
            continue
        cells, split = [], {}
        for peer in peers:
            runs = results.get((test, peer), [])
            user = median([u for u in map(user_per_request, runs) if u is not None])
            total = median([c for c in map(cpu_per_request, runs) if c is not None])
            if user is None or total is None:
                cells.append("n/a")
                continue
            split[peer] = (user, total - user)
            cells.append(f"{user:.1f} + {total - user:.1f}")
        budget = left = ""
        if "nginx" in split and "wharf" in split:
            need = sum(split["nginx"]) / goal
            budget = f"{need:.1f}"
            left = f"{need - split['wharf'][1]:.1f} (now {split['wharf'][0]:.1f})"
        lines.append(f"| {test} | " + " | ".join(cells) + f" | {budget} | {left} |")
    return lines


def ceiling(settings, results, ceiling_tests, goal=1.2):
    """What the L4 forwarder says about each test: the rate at which the
    load core (wrk and the backend) is full even though the proxy does no
    HTTP work, next to nginx's rate and `goal` times it. When `goal` times
    nginx's rate is more than the backend hit directly serves, with no
    proxy at all, it says so: no proxy can reach it on this layout."""
    lines = []
    for test in ceiling_tests:
        runs = results.get((test, FORWARDER), [])
        nginx_runs = results.get((test, "nginx"), [])
        nginx = median([r["rps"] for r in nginx_runs])
        direct = median([r["rps"] for r in results.get((test, "backend direct"), [])])
        if direct and nginx and goal * nginx > direct:
            lines.append(
                f"- {test}: {goal:g}× nginx ({fmt(goal * nginx)} req/s) is more than the backend "
                f"hit directly serves with no proxy at all ({fmt(direct)} req/s): on this core "
                "layout no proxy can reach it."
            )
        if not runs or not nginx:
            continue
        rps = median([r["rps"] for r in runs])
        load = median([r["load_core"] for r in runs if r.get("load_core") is not None])
        proxy = median([r["cpu"] for r in runs if r["cpu"] is not None])
        full = proxy is not None and proxy >= 0.95
        paired = paired_ratio(runs, nginx_runs)
        same_round = f" ({paired:.2f}× in the same round)" if paired else ""
        lines.append(
            f"- {test}: with no HTTP work on the proxy's core (HAProxy in TCP mode, its core "
            f"{percent(proxy)} busy), the load core ({percent(load)} busy) takes {fmt(rps)} req/s, "
            f"{rps / nginx:.2f}× nginx{same_round}; {goal:g}× nginx would be {fmt(goal * nginx)}."
            + (
                " The forwarder's own core was full too, so the load core may take a little more."
                if full
                else ""
            )
        )
    return [""] + lines if lines else []


def direct_budget(settings, results, direct_tests, goal=0.85):
    """What `goal` times the backend's direct rate would leave wharf per
    request, next to the kernel time wharf spends per request now."""
    lines = []
    for test in direct_tests:
        direct = median([r["rps"] for r in results.get((test, "backend direct"), [])])
        runs = results.get((test, "wharf"), [])
        user = median([u for u in map(user_per_request, runs) if u is not None])
        total = median([c for c in map(cpu_per_request, runs) if c is not None])
        if not direct or user is None or total is None or "wharf" not in settings.peers:
            continue
        lines.append(
            f"- {test}: {goal:g}× the backend hit directly ({fmt(direct)} req/s) needs ≤ "
            f"{1e6 / (goal * direct):.1f} µs/request on the proxy's core; wharf's kernel time alone is "
            f"{total - user:.1f} µs, its user time {user:.1f} µs."
        )
    return [""] + lines if lines else []


def conditions(settings, load_before, load_after, skipped, wharf_commit):
    """One paragraph saying where and how the numbers were taken."""
    text = (
        f"{os.cpu_count()} CPUs ({cpu_model()}); proxy pinned to CPU {settings.proxy_cpu}, "
        f"wrk -t1 on CPU {settings.load_cpu}, backend (nginx, 1 worker) on CPU {settings.backend_cpu}; "
        f"{settings.repeats} rounds, {settings.duration:g}s per run; {peer_versions(settings, wharf_commit)}; "
        f"load average {load_before} before, {load_after} after"
    )
    if skipped:
        text += f"; {skipped} runs skipped to stay within BENCH_DEADLINE"
    return text


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def memory_table(settings, idle):
    """RSS of each proxy (all its processes) with the idle connections open.

    The first round starts from a fresh process; later rounds start from
    whatever the earlier ones left behind (allocators keep freed memory), so
    the cost per connection is taken from the first round, and the median
    over rounds shows whether memory grows from burst to burst."""
    lines = [
        f"| memory, {settings.idle_connections:,} idle keep-alive connections | server | RSS at start (MiB) "
        f"| RSS with connections, round 1 (MiB) | KiB per connection (round 1) "
        f"| RSS with connections, median of rounds (MiB) | vs nginx (median) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    nginx_rss = median([r["rss_kib"] for r in idle.get("nginx", [])])
    for peer in settings.peers:
        runs = idle.get(peer)
        if not runs:
            lines.append(f"| idle-10k | {peer} | n/a | n/a | n/a | n/a | |")
            continue
        first = runs[0]
        rss = median([r["rss_kib"] for r in runs])
        ratio = f"{rss / nginx_rss:.2f}×" if nginx_rss else ""
        lines.append(
            f"| idle-10k | {peer} | {fmt(first['rss_before_kib'] / 1024, 1)} | {fmt(first['rss_kib'] / 1024, 1)} "
            f"| {fmt(first['per_conn_kib'], 1)} | {fmt(rss / 1024, 1)} | {ratio} |"
        )
    return lines


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def peer_versions(settings, wharf_commit):
    def first_line(argv):
        try:
            out = subprocess.run(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10
            )
            return out.stdout.strip().splitlines()[0]
        except Exception:
            return "?"

    nginx = first_line(["nginx", "-v"]).replace("nginx version: ", "")
    haproxy = first_line(["haproxy", "-v"]).split(" - ")[0].replace("HAProxy version ", "haproxy/")
    caddy = "caddy/" + first_line(["caddy", "version"]).split()[0]
    wharf = first_line([settings.wharf_bin, "--version"]).replace(" ", "/")
    if wharf_commit:
        wharf += f" ({wharf_commit})"
    return ", ".join([wharf, nginx, haproxy, caddy])
