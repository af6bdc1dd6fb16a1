#!/usr/bin/env bash
# The performance benchmark: iobench beside the textbook C servers and client of
# ../shared/yardsticks, on this machine, in one run. Writes results/yardsticks/.
#
#   bash benches/yardsticks.sh            # about 15 minutes on 2 CPUs, builds included
#   (needs gcc, and liburing-dev for echo_uring)
#
# Server targets (compare --runs 7, interleaved; the ratio of each run to the
# yardstick's run of the same round, median and range): iobench's backends beside the
# yardstick server of the same model, and in a separate pass the kernel's counts; the cost of the
# counting layer (iobench built with and without it); epoll with 10,000 idle
# connections. io-uring beside echo_uring (liburing) in the same passes. Client
# targets: iobench load (both drivers, epoll and io-uring) against pingpong, all
# driving yardsticks/echo_epoll, interleaved, and at one connection on one CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
ys_src=../shared/yardsticks
if [ ! -d "$ys_src" ]; then
  echo "benches/yardsticks.sh needs the yardsticks in $ys_src (textbook C servers and client)" >&2
  exit 2
fi
ys=target/yardsticks
mkdir -p "$ys"
cp "$ys_src"/*.c "$ys_src"/*.h "$ys_src"/Makefile "$ys"/
make -s -C "$ys"
if [ ! -e /usr/include/liburing.h ]; then
  echo "benches/yardsticks.sh needs liburing for the io_uring yardstick: apt-get install liburing-dev" >&2
  exit 2
fi
make -s -C "$ys" echo_uring
cargo build --release --quiet
cargo build --release --quiet --features uncounted --target-dir target/uncounted
ib=target/release/iobench
out=results/yardsticks
mkdir -p "$out"

servers=(--backends select,poll,epoll-lt,epoll-et,io-uring
  --external "ys-select=$ys/echo_select {port} 600"
  --external "ys-poll=$ys/echo_poll {port} 600"
  --external "ys-epoll-lt=$ys/echo_epoll {port} 600 lt"
  --external "ys-epoll-et=$ys/echo_epoll {port} 600"
  --external "ys-uring=$ys/echo_uring {port} 600")

# CPU time without the tracepoints: they cost each system call, so they would
# favour whichever server makes fewer calls.
echo "== servers: iobench beside the yardsticks (7 interleaved runs each)" >&2
"$ib" compare --runs 7 --duration 3s --warmup 1s "${servers[@]}" \
  --export-markdown "$out/servers.md" --export-json "$out/servers.json" > "$out/servers.txt"

echo "== system calls per request, counted by the kernel (raw_syscalls:sys_enter)" >&2
"$ib" compare --runs 1 --duration 2s --warmup 1s --kernel-counts "${servers[@]}" \
  --export-markdown "$out/syscalls.md" --export-json "$out/syscalls.json" > "$out/syscalls.txt"

echo "== the counting layer's cost: epoll-et counted vs compiled out" >&2
"$ib" compare --runs 5 --duration 3s --warmup 1s --backends epoll-et \
  --external "uncounted=target/uncounted/release/iobench serve --backend epoll-et --cpu 0 --listen 127.0.0.1:{port}" \
  --export-markdown "$out/counting.md" --export-json "$out/counting.json" > "$out/counting.txt"

echo "== 10,000 idle connections on epoll and io-uring, 0 and 10,000 interleaved" >&2
"$ib" experiment run benches/idle.toml --out "$out/idle" > /dev/null

echo "== clients: iobench load vs pingpong, driving echo_epoll" >&2
python3 benches/clients.py "$ib" "$ys" "$out" > "$out/clients.md"

python3 benches/summarise.py "$out" > "$out/README.md"
cat "$out/README.md"
