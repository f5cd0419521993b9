#!/usr/bin/env bash
# The demo behind `./qnet demo`: entangled pairs on example networks, run in
# the in-process simulator, with rate and fidelity measured from outcomes.
set -euo pipefail
build=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
qnetsim="$build/netsim/qnetsim"
echo "== An ideal 1 km link: 3000 pairs measured in random Z/X/Y bases at each end"
"$qnetsim" --network "$root/examples/ideal-pair.yaml" --pairs 3000 "$@"
echo
echo "== NV-centre hardware on a 3-node chain, asking the link layer for fidelity >= 0.8"
"$qnetsim" --network "$root/examples/chain3.yaml" --pairs 2000 --min_fidelity 0.8 "$@"
echo
echo "== The same NV link measured in CHSH settings: Bell-inequality violation from outcomes"
"$qnetsim" --network "$root/examples/chain3.yaml" --link alice-bob --pairs 4000 --basis chsh --min_fidelity 0.85 "$@"
