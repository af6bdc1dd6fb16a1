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
counting, c = summaries("counting.json")
idle, i = summaries("idle.json")
machine = servers["machine"]
lines = [
    "# iobench beside the yardsticks",
    "",
    f"Made by `bash benches/yardsticks.sh` on {machine['cpu']}, {machine['cores']} CPUs, "
    f"{machine['kernel']}, {machine['date']}. Server pinned to CPU 0, client to CPU 1, "
    "64 connections x 64 B unless said; medians of interleaved runs. Full tables: "
    "[servers](servers.md), [counting layer](counting.md), [idle](idle.md), [clients](clients.md).",
    "",
    "| target | measured | met |",
    "|---|---|---|",
]
def row(target, measured, ok):
    lines.append(f"| {target} | {measured} | {'yes' if ok else 'no'} |")

et, ys_et = s["epoll-et"], s["ys-epoll-et"]
sc = med(et, "syscalls_per_request")
row("epoll-et: system calls/request <= 2.15", f"{sc:.3f} (kernel: {med(et, 'kernel_syscalls_per_request'):.3f}; yardstick {med(ys_et, 'kernel_syscalls_per_request'):.3f})", sc <= 2.15)
r = med(et, "server_cpu_us_per_request") / med(ys_et, "server_cpu_us_per_request")
row("epoll-et: server CPU/request <= 0.90 x yardstick", f"{r:.2f} x ({med(et, 'server_cpu_us_per_request'):.2f} vs {med(ys_et, 'server_cpu_us_per_request'):.2f} us)", r <= 0.90)
for b in ["select", "poll", "epoll-lt"]:
    ours, theirs = s[b], s["ys-" + b]
    rc = med(ours, "server_cpu_us_per_request") / med(theirs, "server_cpu_us_per_request")
    rr = med(ours, "requests_per_s") / med(theirs, "requests_per_s")
    row(f"{b}: server CPU/request <= 1.0 x, requests/s >= 1.0 x yardstick", f"CPU {rc:.2f} x, requests/s {rr:.2f} x", rc <= 1.0 and rr >= 1.0)
for b in ["epoll-et", "epoll-lt"]:
    rr = med(i[b], "requests_per_s") / med(s[b], "requests_per_s")
    row(f"{b} with 10,000 idle: requests/s >= 0.90 x its 0-idle", f"{rr:.2f} x ({med(i[b], 'requests_per_s'):,.0f} vs {med(s[b], 'requests_per_s'):,.0f})", rr >= 0.90)
cost = 1 - med(c["epoll-et"], "requests_per_s") / med(c["uncounted"], "requests_per_s")
cpu = med(c["epoll-et"], "server_cpu_us_per_request") / med(c["uncounted"], "server_cpu_us_per_request") - 1
row("counting layer costs <= 2% of throughput", f"{cost * 100:+.1f}% requests/s, {cpu * 100:+.1f}% server CPU/request", cost <= 0.02)
rss = med(i["epoll-et"], "server_peak_rss_kib") - med(s["epoll-et"], "server_peak_rss_kib")
row("user memory per idle connection <= 4 KiB", f"{rss * 1024 / 10000:.0f} bytes (peak RSS +{rss:,.0f} KiB for 10,000)", rss * 1024 / 10000 <= 4096)
with open(os.path.join(out, "clients.json")) as f:
    cl = {(r["workload"], r["client"]): r for r in json.load(f)}
many = ("64 connections, 2 CPUs", "iobench load"), ("64 connections, 2 CPUs", "pingpong")
ours, theirs = cl[many[0]], cl[many[1]]
rr = ours["requests_per_s"] / theirs["requests_per_s"]
rc = ours["cpu_us_per_request"] / theirs["cpu_us_per_request"]
row("load generator: requests/s >= 1.0 x and client CPU/request <= 1.0 x pingpong", f"requests/s {rr:.2f} x, CPU {rc:.2f} x", rr >= 1.0 and rc <= 1.0)
one = cl[("1 connection, 1 CPU", "iobench load")]["p50_us"] / cl[("1 connection, 1 CPU", "pingpong")]["p50_us"]
row("load generator: 1 connection on one CPU, p50 <= 1.10 x pingpong", f"{one:.2f} x", one <= 1.10)
lines += ["", "Clients (iobench load against pingpong, both driving echo_epoll):", ""]
with open(os.path.join(out, "clients.md")) as f:
    lines += [f.read().rstrip()]
print("\n".join(lines))
