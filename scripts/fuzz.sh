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
  if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
    cat /tmp/fuzz.$$.log
    failed=1
  fi
done < <(grep -rn --include='*_test.go' '^func Fuzz' . | sed 's|^\./||' | sort)
rm -f /tmp/fuzz.$$.log
if [ "$failed" != 0 ]; then
  echo "fuzz: a target failed; its new corpus entry is under the package's testdata/fuzz" >&2
  exit 1
fi
echo "fuzz: every target ran $fuzztime without a failure"
