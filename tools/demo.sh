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
"$qnetsim" --network "$root/examples/chain3.yaml" --pairs 2000 --min-fidelity 0.8 "$@"
echo
echo "== The same NV link at fidelity >= 0.9, measured in CHSH settings: S from outcomes (readout error included)"
"$qnetsim" --network "$root/examples/chain3.yaml" --link alice-bob --pairs 4000 --basis chsh --min-fidelity 0.9 "$@"
echo
echo "== End to end across repeaters (network layer): routing, swap-ASAP and Pauli-frame tracking on a ring of 6"
"$qnetsim" --network "$root/examples/ring6.yaml" --from leiden --to rotterdam --pairs 3000 "$@"
echo
echo "== NV repeater chain end to end at fidelity >= 0.7: cutoffs discard link pairs that waited too long"
"$qnetsim" --network "$root/examples/chain3.yaml" --from alice --to charlie --pairs 500 --min-fidelity 0.7 "$@"
echo
echo "== The same stack as real processes: one qnetd per node, driven over gRPC by qnetctl"
qnetctl="$build/cli/qnetctl"
state=$(mktemp -d "${TMPDIR:-/tmp}/qnet-demo.XXXXXX")
trap '"$qnetctl" down --state-dir "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
"$qnetctl" up "$root/examples/ideal-pair.yaml" --state-dir "$state" --time-scale 10
"$qnetctl" --state-dir "$state" --node alice entangle --with bob --pairs 200 --type measure --basis six-state |
  tail -n 10
echo
echo "== Teleporting |+i> from alice to bob 60 times; bob measures X/Y/Z and the state is rebuilt from his outcomes"
"$qnetctl" --state-dir "$state" --node alice teleport --to bob --state +i --shots 60 2>/dev/null
echo
echo "== BBM92 quantum key distribution: sifting, parameter estimation, Cascade, verification, privacy amplification"
"$qnetctl" --state-dir "$state" --node alice qkd --with bob --bits 64 --pairs-per-block 5000 --sample-fraction 0.5
echo
echo "== An intercept-resend eavesdropper on alice-bob: the QBER jumps to ~25% and the key exchange aborts"
"$qnetctl" --state-dir "$state" eavesdrop --link alice-bob --fraction 1
"$qnetctl" --state-dir "$state" --node alice qkd --with bob --bits 64 --pairs-per-block 1000 --sample-fraction 0.5 \
  2>&1 | grep -v '^block' || true
"$qnetctl" --state-dir "$state" eavesdrop --link alice-bob --fraction 0 >/dev/null
echo
"$qnetctl" --state-dir "$state" status
"$qnetctl" --state-dir "$state" links
"$qnetctl" --state-dir "$state" down
