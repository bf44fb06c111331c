#!/usr/bin/env bash
# The one test command: sets up a fresh machine (as root) and runs every test.
# Ends with the runner's summary as "N passed, N failed".
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bash "$here/scripts/setup.sh" --controlplane
cd "$here"
export NO_COLOR=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
deno task test "$@" 2>&1 | tee "$log" || status=$?
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -1 || true)
passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
if [ -z "$summary" ]; then
  echo "test: the runner printed no summary (exit $status)"
  exit $(( status == 0 ? 1 : status ))
fi
echo "test: ${passed} passed, ${failed} failed"
exit "$status"
