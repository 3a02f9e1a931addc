#!/usr/bin/env bash
# Runs every fuzz target of the module (each func Fuzz* in a _test.go file) for a while, one
# after another. Usage: scripts/fuzz.sh [DURATION per target, default 60s] [PACKAGE PATTERN]
# scripts/test.sh runs it with a few seconds per target; run it longer before a release.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-60s}
pattern=${2:-.}
failed=0
while IFS= read -r line; do
  file=${line%%:*}
  target=${line##*func }
  target=${target%%(*}
  pkg=./$(dirname "$file")
  [[ "$pkg" =~ $pattern ]] || continue
  echo "fuzz: $pkg $target ($fuzztime)"
  for try in 1 2; do
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
      break
    fi
    # Go 1.26's fuzz coordinator can report "context deadline exceeded" as a failure when
    # -fuzztime runs out while a worker is mid-call (go.dev/issue/75804, fixed in Go 1.27):
    # no input failed and none was written. Such a run is retried once, then reported and
    # not counted; anything else (a failing input, a panic) fails.
    if grep -q '^    context deadline exceeded$' /tmp/fuzz.$$.log &&
      [ "$(grep -c -v -E '^(fuzz: |--- FAIL: Fuzz|    context deadline exceeded$|FAIL|exit status 1$)' /tmp/fuzz.$$.log)" = 0 ]; then
      echo "fuzz: $pkg $target: the fuzz engine's deadline race (go.dev/issue/75804), no failing input (try $try)"
      continue
    fi
    cat /tmp/fuzz.$$.log
    failed=1
    break
  done
done < <(grep -rn --include='*_test.go' '^func Fuzz' . | sed 's|^\./||' | sort)
rm -f /tmp/fuzz.$$.log
if [ "$failed" != 0 ]; then
  echo "fuzz: a target failed; its new corpus entry is under the package's testdata/fuzz" >&2
  exit 1
fi
echo "fuzz: every target ran $fuzztime without a failure"
