"""Writes results/yardsticks/README.md from the exports of benches/yardsticks.sh: the
targets of the performance issue, each with the measured ratio and whether it is met."""
import json, os, platform, sys

out = sys.argv[1]

def summaries(name):
    with open(os.path.join(out, name)) as f:
        j = json.load(f)
    return j, {s["subject"]: s["figures"] for s in j["summaries"]}

def med(fig, key):
    return fig[key]["median"] if key in fig else None

servers, s = summaries("servers.json")
_, k = summaries("syscalls.json")
runs = {x["subject"]: {r["run"]: r for r in x["runs"]} for x in servers["runs"]}

def cpu(r):
    return (r["server"]["proc"]["user_s"] + r["server"]["proc"]["sys_s"]) * 1e6 / r["load"]["requests"]

def rps(r):
    return r["load"]["requests_per_s"]

def paired(a, b):
    """Ratios of a's figure to b's, run by run: the two ran in the same round of the
    interleaving, so the machine's drifts largely cancel. Median, min, max."""
    return sorted(a[i] / b[i] for i in range(len(a)))

def spread(ratios):
    n = len(ratios)
    m = ratios[n // 2] if n % 2 else (ratios[n // 2 - 1] + ratios[n // 2]) / 2
    return m, f"{m:.2f} x ({ratios[0]:.2f}-{ratios[-1]:.2f} over {n} rounds)"

def server_ratio(ours, theirs, f):
    a, b = runs[ours], runs[theirs]
    common = sorted(set(a) & set(b))
    return spread(paired([f(a[i]) for i in common], [f(b[i]) for i in common]))
counting, c = summaries("counting.json")
with open(os.path.join(out, "idle", "data.json")) as f:
    idle = {(r["settings"]["backend"], r["settings"]["idle_connections"]): r["figures"] for r in json.load(f)["rows"]}
machine = servers["machine"]
lines = [
    "# iobench beside the yardsticks",
    "",
    f"Made by `bash benches/yardsticks.sh` on {machine['cpu']}, {machine['cores']} CPUs, "
    f"{machine['kernel']}, {machine['date']}. Server pinned to CPU 0, client to CPU 1, "
    "64 connections x 64 B unless said. Ratios are taken round by round of the "
    "interleaving (each run against the other subject's run of the same round) and given "
    "as median (min-max). Full tables: [servers](servers.md), [system calls](syscalls.md), "
    "[counting layer](counting.md), [idle](idle/README.md), [clients](clients.md).",
    "",
    "| target | measured | met |",
    "|---|---|---|",
]
def row(target, measured, ok):
    lines.append(f"| {target} | {measured} | {'yes' if ok else 'no'} |")

et, ys_et = k["epoll-et"], k["ys-epoll-et"]
sc = med(et, "syscalls_per_request")
row("epoll-et: system calls/request <= 2.15", f"{sc:.3f} (kernel: {med(et, 'kernel_syscalls_per_request'):.3f}; yardstick {med(ys_et, 'kernel_syscalls_per_request'):.3f})", sc <= 2.15)
r, text = server_ratio("epoll-et", "ys-epoll-et", cpu)
row("epoll-et: server CPU/request <= 0.90 x yardstick", f"{text}; medians {med(s['epoll-et'], 'server_cpu_us_per_request'):.2f} vs {med(s['ys-epoll-et'], 'server_cpu_us_per_request'):.2f} us", r <= 0.90)
for b in ["select", "poll", "epoll-lt"]:
    rc, tc = server_ratio(b, "ys-" + b, cpu)
    rr, tr = server_ratio(b, "ys-" + b, rps)
    row(f"{b}: server CPU/request <= 1.0 x, requests/s >= 1.0 x yardstick", f"CPU {tc}, requests/s {tr}", rc <= 1.0 and rr >= 1.0)
ur, ys_ur = k["io-uring"], k["ys-uring"]
ours_sc, kernel_sc, ys_sc = (med(ur, "syscalls_per_request"), med(ur, "kernel_syscalls_per_request"),
                             med(ys_ur, "kernel_syscalls_per_request"))
row("io-uring: system calls/request <= 0.5 and <= 1.1 x echo_uring's", f"{kernel_sc:.3f} (kernel's count) vs {ys_sc:.3f}: {kernel_sc / ys_sc:.2f} x", kernel_sc <= 0.5 and kernel_sc <= 1.1 * ys_sc)
row("io-uring: our count of system calls = the kernel's within 1%", f"ours {ours_sc:.4f}, kernel {kernel_sc:.4f} ({(ours_sc / kernel_sc - 1) * 100:+.2f}%)", abs(ours_sc / kernel_sc - 1) <= 0.01)
rc, tc = server_ratio("io-uring", "ys-uring", cpu)
re, te = server_ratio("io-uring", "epoll-et", cpu)
rr, tr = server_ratio("io-uring", "ys-uring", rps)
row("io-uring: server CPU/request <= 1.0 x echo_uring's and <= 1.0 x epoll-et's; requests/s >= 1.0 x echo_uring's", f"CPU {tc} of echo_uring's, {te} of epoll-et's; requests/s {tr}", rc <= 1.0 and re <= 1.0 and rr >= 1.0)

def idle_rss_per_connection(b):
    """Bytes of server peak RSS per idle connection: 10,000 idle against none."""
    return (med(idle[(b, 10000)], "server_peak_rss_kib") - med(idle[(b, 0)], "server_peak_rss_kib")) * 1024 / 10000

for b in ["epoll-et", "epoll-lt", "io-uring"]:
    busy, quiet = med(idle[(b, 10000)], "requests_per_s"), med(idle[(b, 0)], "requests_per_s")
    row(f"{b} with 10,000 idle: requests/s >= 0.90 x its 0-idle", f"{busy / quiet:.2f} x ({busy:,.0f} vs {quiet:,.0f})", busy / quiet >= 0.90)
cost = 1 - med(c["epoll-et"], "requests_per_s") / med(c["uncounted"], "requests_per_s")
cpu = med(c["epoll-et"], "server_cpu_us_per_request") / med(c["uncounted"], "server_cpu_us_per_request") - 1
row("counting layer costs <= 2% of throughput", f"{cost * 100:+.1f}% requests/s, {cpu * 100:+.1f}% server CPU/request", cost <= 0.02)
rss = idle_rss_per_connection("epoll-et")
row("epoll-et: user memory per idle connection <= 4 KiB", f"{rss:.0f} bytes of peak RSS", rss <= 4096)
rss = idle_rss_per_connection("io-uring")
row("io-uring: server RSS growth per idle connection <= 2 KiB", f"{rss:.0f} bytes of peak RSS", rss <= 2048)
with open(os.path.join(out, "clients.json")) as f:
    cl = {(r["workload"], r["client"]): r for r in json.load(f)}
ours, theirs = cl[("64 connections, 2 CPUs", "iobench load --driver epoll")], cl[("64 connections, 2 CPUs", "pingpong")]
rr, tr = spread(paired([x[0] for x in ours["runs"]], [x[0] for x in theirs["runs"]]))
rc, tc = spread(paired([x[1] for x in ours["runs"]], [x[1] for x in theirs["runs"]]))
row("load generator: requests/s >= 1.0 x and client CPU/request <= 1.0 x pingpong", f"requests/s {tr}, CPU {tc}", rr >= 1.0 and rc <= 1.0)
ring = cl[("64 connections, 2 CPUs", "iobench load --driver io-uring")]
rp, tp = spread(paired([x[1] for x in ring["runs"]], [x[1] for x in theirs["runs"]]))
re, te = spread(paired([x[1] for x in ring["runs"]], [x[1] for x in ours["runs"]]))
row("load --driver io-uring: client CPU/request <= 1.0 x pingpong's and < load --driver epoll's", f"{tp} of pingpong's, {te} of the epoll driver's", rp <= 1.0 and re < 1.0)
one = cl[("1 connection, 1 CPU", "iobench load --driver epoll")]["p50_us"] / cl[("1 connection, 1 CPU", "pingpong")]["p50_us"]
row("load generator: 1 connection on one CPU, p50 <= 1.10 x pingpong", f"{one:.2f} x", one <= 1.10)
lines += ["", "Clients (iobench load against pingpong, both driving echo_epoll):", ""]
with open(os.path.join(out, "clients.md")) as f:
    lines += [f.read().rstrip()]
print("\n".join(lines))
