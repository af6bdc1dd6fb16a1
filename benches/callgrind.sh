#!/usr/bin/env bash
# Instructions per request, exactly: each server runs under callgrind (user-space
# instruction counts, repeatable on this noisy machine) while `iobench load`, not
# under valgrind, sends it a fixed number of requests. Two request counts, N1 and N2;
# (Ir(N2) - Ir(N1)) / (N2 - N1) is the marginal cost of a request, start-up and
# shutdown cancelled out. Then, without valgrind, the kernel's count of system calls
# per request (the raw_syscalls:sys_enter tracepoint, perf stat), at N2 requests.
#
#   bash benches/callgrind.sh                      # every target below, ~10 minutes
#   bash benches/callgrind.sh epoll-et ys-epoll-et # some of them
#   N1=20000 N2=100000 CONNS=64 PAYLOAD=64 SYSCALLS=0 bash benches/callgrind.sh ...
#
# Targets: select poll epoll-lt epoll-et (iobench serve, reactor model, defaults) and
# ys-select ys-poll ys-epoll-lt ys-epoll-et (the C yardsticks of ../shared/yardsticks,
# built with gcc -O2 into target/yardsticks). The callgrind files stay in
# target/callgrind/ (NAME.N.out) for `callgrind_annotate --inclusive=yes`.
#
# What this does not see: the kernel's work inside each system call (callgrind counts
# user-space instructions only), which is most of a request's CPU time here; hence the
# system-call column. Under valgrind the server is slow, so each wakeup finds more
# ready connections than in a native run: compare targets with each other, not with
# native figures. Server pinned to CPU 0, client to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-20000}
N2=${N2:-100000}
CONNS=${CONNS:-64}
PAYLOAD=${PAYLOAD:-64}
SYSCALLS=${SYSCALLS:-1}
PORT=${PORT:-17690}
out=target/callgrind
mkdir -p "$out"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(select poll epoll-lt epoll-et ys-select ys-poll ys-epoll-lt ys-epoll-et)

ib=target/release/iobench
cargo build --release --quiet
ys_src=../shared/yardsticks
ys=target/yardsticks
if [[ " ${targets[*]} " == *" ys-"* ]]; then
  [ -d "$ys_src" ] || { echo "the ys-* targets need the yardsticks in $ys_src" >&2; exit 2; }
  mkdir -p "$ys"
  cp "$ys_src"/*.c "$ys_src"/*.h "$ys_src"/Makefile "$ys"/
  make -s -C "$ys"
fi

# The server's command line for a target, listening on $2.
server_cmd() {
  case $1 in
    select | poll | epoll-lt | epoll-et) echo "$ib serve --backend $1 --listen 127.0.0.1:$2" ;;
    ys-select) echo "$ys/echo_select $2 600" ;;
    ys-poll) echo "$ys/echo_poll $2 600" ;;
    ys-epoll-lt) echo "$ys/echo_epoll $2 600 lt" ;;
    ys-epoll-et) echo "$ys/echo_epoll $2 600" ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}

wait_listening() { # port pid: until that process listens on the port (no connection made)
  for _ in $(seq 600); do
    ss -Hltnp "sport = :$1" | grep -q "pid=$2," && return 0
    kill -0 "$2" 2>/dev/null || { echo "server exited before listening" >&2; return 1; }
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# Runs the client for $2 requests against port $1; fails unless all came back intact.
drive() {
  local json
  json=$(taskset -c 1 "$ib" load --target "127.0.0.1:$1" --connections "$CONNS" \
    --payload "$PAYLOAD" --requests "$2" --warmup 0 --json)
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); n=int(sys.argv[2])
bad = r["requests_total"] != n or r["mismatched_bytes"] or r["lost_bytes"] or r["unexpected_closes"]
sys.exit("client: " + sys.argv[1] if bad else 0)' "$json" "$2"
}

stop() { # pid
  kill -TERM "$1" # (SIGINT is ignored by background jobs of a script)
  wait "$1" || true
}

# Ir of one server run of $2 requests, from the callgrind file's totals.
callgrind_run() { # name requests port
  local name=$1 n=$2 port=$3 file=$out/$1.$2.out pid
  # shellcheck disable=SC2046
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$file" \
    $(server_cmd "$name" "$port") > "$out/$name.$n.log" 2>&1 &
  pid=$!
  wait_listening "$port" $pid
  drive "$port" "$n"
  stop $pid
  awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

# System calls (all kinds, the kernel's count) per request of a native run.
syscalls_run() { # name port
  local name=$1 n=$N2 port=$2 pid perf_pid file=$out/$1.syscalls.txt
  # shellcheck disable=SC2046
  taskset -c 0 $(server_cmd "$name" "$port") > "$out/$name.native.log" 2>&1 &
  pid=$!
  wait_listening "$port" $pid
  perf stat -x, -o "$file" -e raw_syscalls:sys_enter,syscalls:sys_enter_read,syscalls:sys_enter_write -p $pid &
  perf_pid=$!
  sleep 0.3 # perf attaches
  drive "$port" "$n"
  kill -INT $perf_pid
  wait $perf_pid || true
  stop $pid
  awk -F, -v n="$n" '$3 ~ /sys_enter/ { sub(/.*:/, "", $3); printf "%s %.3f  ", $3, $1 / n }' "$file"
}

printf '%-12s %14s %14s %12s  %s\n' target "Ir(N1=$N1)" "Ir(N2=$N2)" "Ir/request" \
  "system calls/request (native, N2; kernel count)"
for t in "${targets[@]}"; do
  PORT=$((PORT + 3)) # a fresh port per run
  ir1=$(callgrind_run "$t" "$N1" $PORT)
  ir2=$(callgrind_run "$t" "$N2" $((PORT + 1)))
  per=$(python3 -c "print(f'{($ir2 - $ir1) / ($N2 - $N1):.1f}')")
  sc=""
  [ "$SYSCALLS" = 1 ] && sc=$(syscalls_run "$t" $((PORT + 2)))
  printf '%-12s %14s %14s %12s  %s\n' "$t" "$ir1" "$ir2" "$per" "$sc"
done
