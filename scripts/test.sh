#!/usr/bin/env bash
# Runs every Callproof test on a fresh machine: installs what the tests need when it is
# missing, starts its own services on free loopback ports, runs go vet and go test -race,
# and stops the services again.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- what the tests need -------------------------------------------------------------------
need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
command -v sox >/dev/null 2>&1 || need_pkgs+=(sox)
command -v espeak-ng >/dev/null 2>&1 || need_pkgs+=(espeak-ng)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
[ -d /usr/share/asterisk/sounds/en_US_f_Allison ] || need_pkgs+=(asterisk-core-sounds-en-wav)
[ -d /usr/share/asterisk/sounds/es_MX_f_Allison ] || need_pkgs+=(asterisk-core-sounds-es-wav)
[ -d /usr/share/asterisk/moh ] || need_pkgs+=(asterisk-moh-opsound-wav)
dpkg -s libspandsp-dev >/dev/null 2>&1 || need_pkgs+=(libspandsp-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "test.sh: missing ${need_pkgs[*]}; install them (Debian: apt-get install ${need_pkgs[*]})" >&2
    exit 1
  fi
fi

# --- services on free loopback ports ---------------------------------------------------------
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work" --logfile "$work/redis.log" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done
export CALLPROOF_TEST_REDIS_ADDR="127.0.0.1:$redis_port"

# --- the checks ------------------------------------------------------------------------------
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -race -timeout 15m "$@" ./...

# Every fuzz target for a couple of seconds (scripts/fuzz.sh runs them longer).
./scripts/fuzz.sh 2s

# The in-band DTMF detector against spandsp (cgo, behind a build tag so the normal build stays
# pure Go): the same signals through both, every row of the conformance suite, talk-off on
# speech and music, CPU per frame. It fails if ours is worse on any row, and rewrites
# media/dtmf/testdata/spandsp_comparison.md (the table BENCHMARKS.md quotes).
if pkg-config --exists spandsp 2>/dev/null; then
  go vet -tags spandsp ./media/dtmf/...
  go test -tags spandsp -run TestSpandspComparison -timeout 30m ./media/dtmf/
else
  echo "test.sh: spandsp not found by pkg-config; the DTMF comparison needs libspandsp-dev" >&2
  exit 1
fi
