"""iobench load (driving through epoll, and through io_uring) against yardsticks/pingpong,
all driving yardsticks/echo_epoll (ET), interleaved, 5 runs each: 64 connections x 64 B with server and client on different
CPUs, and 1 connection with both on one CPU. Prints a Markdown table of medians."""
import json, os, signal, statistics, subprocess, sys, time

ib, ys, out = sys.argv[1], sys.argv[2], sys.argv[3]

def server(port, cpu):
    p = subprocess.Popen(["taskset", "-c", cpu, f"{ys}/echo_epoll", str(port), "600"])
    time.sleep(0.3)
    return p

def pingpong(port, cpu, conns):
    out = subprocess.run(["taskset", "-c", cpu, f"{ys}/pingpong", "-p", str(port), "-c", str(conns),
                          "-s", "64", "-t", "5", "-w", "2"], capture_output=True, text=True, check=True).stdout
    kv = dict(x.split("=") for x in out.split())
    rps = float(kv["rps"])
    cpu_share = float(kv["client_cpu"].rstrip("%")) / 100
    return rps, cpu_share * 1e6 / rps, float(kv["p50_us"])

def load(port, cpu, conns, driver):
    out = subprocess.run([ib, "load", "--driver", driver, "--target", f"127.0.0.1:{port}", "--cpu", cpu, "--connections",
                          str(conns), "--payload", "64", "--duration", "5s", "--warmup", "2s", "--json"],
                         capture_output=True, text=True, check=True).stdout
    j = json.loads(out)
    return j["requests_per_s"], j["client_cpu_us_per_request"], j["latency"]["p50"]

rows = []
runs = {}
for label, conns, server_cpu, client_cpu in [("64 connections, 2 CPUs", 64, "0", "1"),
                                              ("1 connection, 1 CPU", 1, "0", "0")]:
    srv = server(9411 if conns == 64 else 9412, server_cpu)
    port = 9411 if conns == 64 else 9412
    res = {"pingpong": [], "iobench load --driver epoll": [], "iobench load --driver io-uring": []}
    try:
        for _ in range(5):
            res["pingpong"].append(pingpong(port, client_cpu, conns))
            res["iobench load --driver epoll"].append(load(port, client_cpu, conns, "epoll"))
            res["iobench load --driver io-uring"].append(load(port, client_cpu, conns, "io-uring"))
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait()
    for name, measured in res.items():
        med = [statistics.median(r[i] for r in measured) for i in range(3)]
        lo = min(r[0] for r in measured); hi = max(r[0] for r in measured)
        rows.append((label, name, med[0], lo, hi, med[1], med[2]))
        runs[(label, name)] = measured

with open(os.path.join(out, "clients.json"), "w") as f:
    # Each row keeps its runs (requests/s, CPU us/request, p50 us), in order: run i of
    # both clients ran back to back, so their ratio is taken run by run.
    json.dump([dict(zip(["workload", "client", "requests_per_s", "min", "max", "cpu_us_per_request", "p50_us"], r),
                    runs=runs[(r[0], r[1])]) for r in rows], f, indent=1)

print("| workload | client | requests/s (median) | min-max | client CPU us/request | p50 us |")
print("|---|---|---|---|---|---|")
for label, name, rps, lo, hi, cpu, p50 in rows:
    print(f"| {label} | {name} | {rps:,.0f} | {lo:,.0f}-{hi:,.0f} | {cpu:.2f} | {p50:.1f} |")
