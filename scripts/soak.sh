#!/usr/bin/env bash
# Flake hunt: run tests/fuse (the mount, reliability and model suites) RUNS times (default 20), every other run
# with a CPU hog (one busy process per core) beside them, and print the names of the tests that
# failed in any run, with how often. Exit 1 if any run failed.
#   bash scripts/soak.sh [RUNS] [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
shift || true
suites=(tests/fuse)

log_dir=$(mktemp -d /tmp/orionfs-soak.XXXXXX)
failed_runs=0
for run in $(seq 1 "$runs"); do
  hog_pids=()
  if (( run % 2 == 0 )); then
    for _ in $(seq 1 "$(nproc)"); do
      timeout 1800 python3 -c 'while True: pass' & hog_pids+=($!)
    done
  fi
  start=$(date +%s)
  .venv/bin/python -m pytest -q -rf -p no:cacheprovider "${suites[@]}" "$@" >"$log_dir/run-$run.txt" 2>&1
  status=$?
  for pid in "${hog_pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait "${hog_pids[@]}" 2>/dev/null
  summary=$(tail -n 1 "$log_dir/run-$run.txt")
  echo "run $run/$runs ($(( $(date +%s) - start )) s, hog: $(( run % 2 == 0 ))): $summary"
  if [ $status -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
    grep -E '^(FAILED|ERROR) ' "$log_dir/run-$run.txt" | sed 's/^/    /'
  fi
done
echo
echo "soak: $failed_runs of $runs runs failed (logs in $log_dir)"
grep -hE '^(FAILED|ERROR) ' "$log_dir"/run-*.txt | cut -d' ' -f2 | sort | uniq -c | sort -rn
[ $failed_runs -eq 0 ]
