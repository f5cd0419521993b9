#!/usr/bin/env bash
# Runs every benchmark (Google Benchmark) with repetitions and prints medians.
# Usage (via ./qnet bench): tools/bench.sh BUILD_DIR [extra benchmark flags, e.g. --benchmark_filter=BM_Cnot]
set -euo pipefail
build=$1; shift
bin="$build/bench/qnet_bench"
[ -x "$bin" ] || { echo "qnet: $bin was not built" >&2; exit 1; }
out="$build/bench-results.json"
"$bin" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out" --benchmark_out_format=json "$@" | grep -v -E '_(mean|stddev|cv) '
echo "qnet: medians above; full results in $out" >&2
