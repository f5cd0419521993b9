#!/usr/bin/env bash
# The daemons against the simulator on the same network file, per time scale:
# pairs per simulated second through two qnetd (one link-layer MEASURE
# request) and through qnetsim, their ratio, and the lag the daemons report.
# Usage: tools/time_scale_matrix.sh BUILD_DIR [FILE:FROM:TO:PAIRS:SCALES ...]
#   e.g. tools/time_scale_matrix.sh build examples/ideal-pair.yaml:alice:bob:300:0.001,1,10,100
set -euo pipefail
build=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
qnetctl="$build/cli/qnetctl"; qnetsim="$build/netsim/qnetsim"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("examples/ideal-pair.yaml:alice:bob:300:0.001,0.01,1,10,100"
                                 "examples/chain3.yaml:alice:bob:150:0.1,1,10,100")
state=$(mktemp -d /tmp/qnet-matrix.XXXXXX)
trap '"$qnetctl" --state-dir "$state/net" down >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
printf '%-20s %-9s %12s %12s %7s %8s %10s\n' file scale "qnetsim/s" "daemons/s" ratio behind "max lag"
for c in "${cases[@]}"; do
  IFS=: read -r file from to pairs scales <<<"$c"
  sim=$("$qnetsim" --network "$root/$file" --link "$from-$to" --pairs "$pairs" --basis bb84 --output json |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["links"][0]["pairs_per_second"])')
  for s in ${scales//,/ }; do
    "$qnetctl" up "$root/$file" --time-scale "$s" --state-dir "$state/net" >/dev/null
    "$qnetctl" --state-dir "$state/net" --node "$from" --output json entangle --with "$to" --pairs "$pairs" \
      --type measure --basis bb84 >"$state/out.json"
    "$qnetctl" --state-dir "$state/net" down >/dev/null
    /usr/bin/python3 - "$file" "$s" "$sim" "$state/out.json" <<'PY'
import json, sys
file, scale, sim, path = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
summary = json.loads(open(path).read().strip().splitlines()[-1])["summary"]
lag = summary["lag"]
print("%-20s %-9g %12.4g %12.4g %7.3f %7.1f%% %10.3g" % (file.split("/")[-1], scale, sim, summary["rate_hz"],
      summary["rate_hz"] / sim, 100 * lag["behind_fraction"], lag["max_lag_s"]))
PY
  done
done
