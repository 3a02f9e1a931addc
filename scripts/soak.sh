#!/usr/bin/env bash
# Soak: keep N concurrent calls up against a fresh demo server for a while, sampling the
# server's goroutines and heap, and say whether either grew.
#
#   ./scripts/soak.sh                 # 300 calls: 15 min warm-up, then 30 min measured
#   SOAK_CALLS=50 SOAK_WARMUP=1m SOAK_DURATION=3m ./scripts/soak.sh
#
# The warm-up lets the state the server keeps by design for a fixed time fill up: the agent
# log holds every call's messages (token included) for 15 minutes so that agents can resume,
# so heap rises for the first 15 minutes of any busy period and is flat after. The measured
# window follows it. Every sample is taken after a forced garbage collection (the admin
# listener's heap profile with gc=1), so heap figures are live memory, not garbage waiting for
# the collector. Growth is the mean of the last fifth of the measured samples against the mean
# of its first fifth. The script fails when a call fails or either figure grew by more than
# SOAK_MAX_GROWTH percent (default 5), and leaves the samples in SOAK_OUT (default a temporary
# directory, printed).
set -euo pipefail
cd "$(dirname "$0")/.."

calls=${SOAK_CALLS:-300}
duration=${SOAK_DURATION:-30m}
warmup=${SOAK_WARMUP:-15m}
dtmf=${SOAK_DTMF:-inband}
max_growth=${SOAK_MAX_GROWTH:-5}
every=${SOAK_EVERY:-10}
out=${SOAK_OUT:-$(mktemp -d)}
mkdir -p "$out"

secs() { python3 -c 'import re,sys; print(int(sum(float(n)*{"h":3600,"m":60,"s":1}[u] for n,u in re.findall(r"([\d.]+)([hms])", sys.argv[1]))))' "$1"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

go build -o "$out/callproof" ./cmd/callproof
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
http_port=$(free_port)
admin_port=$(free_port)
CALLPROOF_STREAMS_PER_MINUTE=-1 "$out/callproof" demo --data "$out/data" --http "127.0.0.1:$http_port" \
  --admin "127.0.0.1:$admin_port" --audiosocket 127.0.0.1:0 --sip 127.0.0.1:0 \
  >"$out/server.out" 2>"$out/server.log" &
server=$!
sampler=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

# sample prints: unix seconds, goroutines, heap in use after GC (bytes), live calls.
sample() {
  local heap gor live
  heap=$(curl -fs "http://127.0.0.1:$admin_port/debug/pprof/heap?gc=1&debug=1" | awk '/^# HeapInuse = /{print $4}')
  gor=$(curl -fs "http://127.0.0.1:$admin_port/metrics" | awk '/^go_goroutines /{print $2}')
  live=$(curl -fs "http://127.0.0.1:$admin_port/metrics" | awk '/^callproof_live_calls/{s+=$2} END{print s+0}')
  echo "$(date +%s) $gor $heap $live"
}
echo "# idle before: $(sample)" | tee "$out/idle.txt"
(
  while sleep "$every"; do sample; done
) >"$out/samples.txt" &
sampler=$!

date +%s >"$out/start.txt"
# A failed call makes load exit non-zero; the verdict below still reports it.
"$out/callproof" load --server "http://127.0.0.1:$http_port" --data "$out/data" --dtmf "$dtmf" \
  --calls "$calls" --ramp 30s --duration "$(( $(secs "$warmup") + $(secs "$duration") ))s" --pid "$server" --json >"$out/load.json" || true
kill "$sampler" 2>/dev/null || true
sampler=
sleep 2
echo "# idle after: $(sample)" | tee -a "$out/idle.txt"

python3 - "$out" "$max_growth" "$(secs "$warmup")" "$(secs "$duration")" <<'EOF'
import json, sys
out, limit, warmup, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
start = float(open(out + "/start.txt").read()) + 30  # the ramp
rows = [list(map(float, l.split())) for l in open(out + "/samples.txt") if len(l.split()) == 4]
mean = lambda rs, i: sum(r[i] for r in rs) / len(rs)
for lo in range(0, int(warmup + secs), 300):
    part = [r for r in rows if start + lo <= r[0] < start + lo + 300]
    if part:
        print(f"minute {lo // 60:3d}-{lo // 60 + 5:<3d} {'warm-up ' if lo < warmup else 'measured'}: goroutines {mean(part, 1):.0f}, "
              f"heap after GC {mean(part, 2) / (1 << 20):.1f} MiB, live calls {mean(part, 3):.0f}")
# The measured window: after the warm-up, while new calls were still being started.
rows = [r for r in rows if start + warmup <= r[0] <= start + warmup + secs]
report = json.load(open(out + "/load.json"))
n = len(rows)
if n < 10:
    sys.exit(f"soak: only {n} samples; run longer")
fifth = n // 5
early, late = rows[:fifth], rows[n - fifth:]
ok = True
print(f"samples: {n}, every {(rows[-1][0] - rows[0][0]) / (n - 1):.0f} s; calls completed {report['completed']}, "
      f"verified {report['verified']}, failed {report['failed']}, frames late {report['frames_late']} of {report['frames_sent']}")
for name, i, unit in (("goroutines", 1, 1), ("heap in use after GC (MiB)", 2, 1 << 20), ("live calls", 3, 1)):
    a, b = mean(early, i) / unit, mean(late, i) / unit
    growth = (b - a) / a * 100 if a else 0.0
    print(f"{name}: first fifth {a:.1f}, last fifth {b:.1f}, growth {growth:+.2f} %")
    if i in (1, 2) and growth > limit:
        ok = False
if report["failed"] != 0:
    print("soak: calls failed:", report.get("fail_reasons"))
    ok = False
srv = report.get("server") or {}
if srv:
    print(f"server CPU {srv['cpu_seconds']:.1f} s, {srv['cpu_seconds_per_call_second'] * 1000:.2f} ms per call-second, "
          f"peak RSS {srv['peak_rss_bytes'] / (1 << 20):.0f} MiB")
print("samples and report in", out)
sys.exit(0 if ok else 1)
EOF
