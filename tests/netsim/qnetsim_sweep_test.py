#!/usr/bin/python3
"""qnetsim --sweep and --plot as a user runs them, and its flag spelling.

Checks the JSON figures of a length sweep (link pairs), a hop sweep (end to
end), a BBM92 key-rate sweep against the PLOB bound and a decoy-state BB84
sweep against its closed form (and the photon-number-splitting attack), that the SVG and PNG
files are drawn (the SVG parses as XML and names the series), that points
run side by side (--jobs) give the same figures as one at a time, that flags
which do not go together are refused with a message, and that flags are
spelled with dashes (underscores still taken, with a note).

Usage: qnetsim_sweep_test.py QNETSIM EXAMPLES_DIR ARTIFACTS_DIR
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

QNETSIM, EXAMPLES, ARTIFACTS = sys.argv[1:4]
failures = []
if shutil.which("gnuplot") is None:
    print("SKIP: gnuplot is absent (Debian gnuplot-nox; ./qnet test installs it)")
    sys.exit(77)


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def run(*args, expect=0):
    proc = subprocess.run([QNETSIM, *args], capture_output=True, text=True, timeout=900)
    check(proc.returncode == expect,
          f"qnetsim {' '.join(args)} exited {proc.returncode}, expected {expect}: {proc.stderr.strip()}")
    return proc


def svg_text(path):
    root = ET.parse(path).getroot()  # raises if the file is not XML
    return " ".join(t for t in root.itertext())


work = tempfile.mkdtemp(prefix="qnetsim-sweep-")
os.makedirs(ARTIFACTS, exist_ok=True)
try:
    # Link pairs against the link's length.
    svg = os.path.join(work, "link.svg")
    out = run("--network", f"{EXAMPLES}/noisy-pair.yaml", "--sweep", "length_km=0:30:10", "--pairs", "400",
              "--output", "json", "--plot", svg)
    sweep = json.loads(out.stdout)
    check(sweep["mode"] == "link" and sweep["sweep"]["parameter"] == "length_km", f"link sweep header: {sweep}")
    lengths = [p["length_km"] for p in sweep["points"]]
    check(lengths == [0, 10, 20, 30], f"link sweep lengths {lengths}")
    rates = [p["pairs_per_second"] for p in sweep["points"]]
    check(all(a > b for a, b in zip(rates, rates[1:])), f"pair rate falls with length: {rates}")
    # Points run side by side (--jobs): the same figures as one at a time.
    for jobs in ("1", "3"):
        again = json.loads(run("--network", f"{EXAMPLES}/noisy-pair.yaml", "--sweep", "length_km=0:30:10", "--pairs",
                               "400", "--output", "json", "--jobs", jobs).stdout)
        check(again["points"] == sweep["points"], f"--jobs {jobs} changed the figures: {again['points']}")
    run("--network", f"{EXAMPLES}/noisy-pair.yaml", "--jobs", "2", expect=1)  # --jobs without --sweep
    for p in sweep["points"]:
        check(p["pairs"] == 400 and 0.25 <= p["fidelity"]["value"] <= 1.0, f"link point {p}")
    check(sweep.get("plot") == svg, "the JSON names the plot")
    text = svg_text(svg)
    for label in ("pair rate", "fidelity (measured, +-1 s.e.)", "length of alice-bob (km)", "noisy-pair"):
        check(label in text, f"'{label}' in the link sweep's SVG")
    shutil.copy(svg, os.path.join(ARTIFACTS, "qnetsim-sweep-link.svg"))

    # End-to-end pairs against hops on the ring: the far end is the first
    # node (file order) that many hops from amsterdam.
    png = os.path.join(work, "hops.png")
    out = run("--network", f"{EXAMPLES}/ring6.yaml", "--from", "amsterdam", "--sweep", "hops=1:3", "--pairs", "200",
              "--output", "json", "--plot", png)
    sweep = json.loads(out.stdout)
    check([p["to"] for p in sweep["points"]] == ["leiden", "hague", "delft"], f"hop sweep ends: {sweep['points']}")
    check([len(p["path"]) - 1 for p in sweep["points"]] == [1, 2, 3], "hop sweep path lengths")
    with open(png, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "the hop sweep's PNG is a PNG")
    shutil.copy(png, os.path.join(ARTIFACTS, "qnetsim-sweep-hops.png"))

    # Neighbours are served by the link layer, as qnetd serves them: --from
    # and --to on one link give exactly the figures of --link (same seed),
    # and a hop sweep's first point is that link's rate; two hops go through
    # the network layer. (The network layer keeps a qubit per side free, so
    # on chain3's 2-qubit alice it gave half the rate the daemons measured.)
    one_hop = json.loads(run("--network", f"{EXAMPLES}/chain3.yaml", "--from", "alice", "--to", "bob", "--pairs", "300",
                             "--output", "json", "--quiet").stdout)
    link = json.loads(run("--network", f"{EXAMPLES}/chain3.yaml", "--link", "alice-bob", "--pairs", "300",
                          "--output", "json", "--quiet").stdout)["links"][0]
    check(one_hop["layer"] == "link", f"one hop is served by the link layer: {one_hop.get('layer')}")
    for key in ("pairs", "simulated_seconds", "pairs_per_second", "error_rate", "fidelity_estimate"):
        check(one_hop[key] == link[key], f"--from/--to alice bob {key} {one_hop[key]} == --link alice-bob's {link[key]}")
    two_hops = json.loads(run("--network", f"{EXAMPLES}/chain3.yaml", "--from", "alice", "--to", "charlie", "--pairs",
                              "50", "--output", "json", "--quiet").stdout)
    check(two_hops["layer"] == "network" and two_hops["path"] == ["alice", "bob", "charlie"],
          f"two hops go through the network layer: {two_hops.get('layer')} {two_hops.get('path')}")

    # BBM92 key rate against length, with the PLOB bound beside it.
    svg = os.path.join(work, "key.svg")
    out = run("--network", f"{EXAMPLES}/ideal-pair.yaml", "--qkd", "bbm92", "--from", "alice", "--to", "bob",
              "--bits", "500", "--sweep", "length_km=10:30:10", "--output", "json", "--plot", svg)
    sweep = json.loads(out.stdout)
    check(sweep["mode"] == "qkd", "qkd sweep mode")
    plob = []
    for p in sweep["points"]:
        check("error" not in p, f"key at {p['length_km']} km: {p.get('error')}")
        if "error" in p:
            continue
        check(p["final_key_bits"] >= 500, f"key bits at {p['length_km']} km: {p['final_key_bits']}")
        check(0 < p["key_bits_per_second"] < p["plob_bound_bits_per_second"],
              f"key rate under the PLOB bound at {p['length_km']} km: {p}")
        # Through the station each half has more light than the whole link.
        check(p["plob_bound_bits_per_second"] < p["station_bound_bits_per_second"],
              f"the bound through the heralding station is above PLOB's at {p['length_km']} km: {p}")
        plob.append(p["plob_bound_bits_per_second"])
    # -log2(1 - eta) for 0.2 dB/km, per attempt: the ratio between points
    # depends only on eta and on the attempt's length-bound duration.
    check(all(a > b for a, b in zip(plob, plob[1:])), f"PLOB bound falls with length: {plob}")
    text = svg_text(svg)
    check("PLOB bound" in text and "key rate (measured)" in text, "key sweep SVG names the key rate and the bound")
    shutil.copy(svg, os.path.join(ARTIFACTS, "qnetsim-sweep-key.svg"))

    # Decoy-state BB84 on the GYS link, as a user runs it: a length sweep
    # with its figure, then the photon-number-splitting attack on BB84
    # without and with decoys.
    svg = os.path.join(work, "decoy.svg")
    gys = f"{EXAMPLES}/decoy-bb84.yaml"
    out = run("--network", gys, "--qkd", "decoy-bb84", "--from", "alice", "--to", "bob", "--sweep", "length_km=0:40:20",
              "--pulses", "4000000", "--output", "json", "--plot", svg)
    sweep = json.loads(out.stdout)
    check(sweep["mode"] == "weak-coherent-qkd", f"decoy sweep mode: {sweep['mode']}")
    for p in sweep["points"]:
        check("error" not in p, f"decoy point at {p['length_km']} km: {p.get('error')}")
        if "error" in p:
            continue
        check(p["pulses"] == 4000000, f"pulses per point: {p}")
        # The rate from the counts agrees with the same estimator's closed form
        # within 5 of its standard errors, and the ideal single-photon source
        # beats infinitely many decoys.
        check(abs(p["key_rate_per_pulse"] - p["analytic_rate_per_pulse"]) < 5 * p["key_rate_standard_error"],
              f"decoy key rate at {p['length_km']} km within 5 standard errors of the closed form: {p}")
        check(p["single_photon_source_rate_per_pulse"] > p["infinite_decoy_rate_per_pulse"] > 0, f"closed forms: {p}")
        if "plob_bound_per_pulse" in p:
            check(p["key_rate_per_pulse"] < p["plob_bound_per_pulse"], f"under PLOB: {p}")
    text = svg_text(svg)
    check("vacuum + weak decoy, closed form" in text and "PLOB bound" in text, "decoy sweep SVG names its curves")
    shutil.copy(svg, os.path.join(ARTIFACTS, "qnetsim-sweep-decoy.svg"))
    attack = ["--network", gys, "--from", "alice", "--to", "bob", "--mu", "0.8", "--eavesdrop", "pns", "--pulses",
              "3000000", "--output", "json"]
    plain = json.loads(run("--qkd", "bb84-wcp", *attack).stdout)
    check(plain["single_photon_assumption_rate_per_pulse"] > 0 and plain["eavesdropper_known_fraction"] > 0.99,
          f"without decoys a key is claimed that the attacker holds: {plain}")
    decoy = json.loads(run("--qkd", "decoy-bb84", *attack).stdout)
    check(decoy["asymptotic"]["key_rate_per_pulse"] <= 0 and decoy["finite_key"]["key_bits"] == 0,
          f"with decoys the attack leaves no key: {decoy}")

    # The satellite relay example, at a hundredth of the source rate: two
    # passes, the relayed key the shorter, key only while the link is up.
    with open(f"{EXAMPLES}/satellite-relay.yaml") as f:
        relay_text = f.read().replace("    preset: micius\n", "    preset: micius\n    source_rate_hz: 1000000\n")
    relay_file = os.path.join(work, "relay.yaml")
    with open(relay_file, "w") as f:
        f.write(relay_text)
    relay = json.loads(run("--network", relay_file, "--qkd", "decoy-bb84", "--from", "xinglong", "--to", "graz",
                           "--mu", "0.8", "--intensity-probabilities", "0.5,0.25,0.25", "--output", "json").stdout)
    check(relay.get("trusted_relay") == "micius" and len(relay.get("passes", [])) == 2, f"relay: {relay.keys()}")
    check(relay["key_bits"] == min(p["finite_key_bits"] for p in relay["passes"]), "the relayed key is the shorter")
    for p in relay["passes"]:
        for seg in p["segments"]:
            check(seg["link_up"] == (seg["elevation_deg"] >= 10.0), f"{p['link']} up only above 10 degrees: {seg}")
            check(seg["link_up"] or seg["sifted"] == 0, f"{p['link']}: no key while down: {seg}")
        check(sum(s["sifted"] for s in p["segments"]) == p["sifted_bits"] > 0, f"{p['link']} sifted bits")

    # Flags that do not go together.
    bad = [
        (["--network", f"{EXAMPLES}/ideal-pair.yaml", "--plot", "x.svg"], "--plot draws a sweep"),
        (["--network", f"{EXAMPLES}/ring6.yaml", "--sweep", "hops=1:2"], "--sweep hops needs --from"),
        (["--network", f"{EXAMPLES}/ring6.yaml", "--sweep", "length_km=1:2"], "needs --link NAME"),
        (["--network", f"{EXAMPLES}/ideal-pair.yaml", "--sweep", "length_km=1:2", "--plot", os.path.join(work, "x.pdf")],
         "must end in .svg or .png"),
        (["--network", f"{EXAMPLES}/ideal-pair.yaml", "--sweep", "speed=1:2"], "parameter 'speed' is unknown"),
        (["--network", f"{EXAMPLES}/chain3.yaml", "--qkd", "decoy-bb84", "--from", "alice", "--to", "charlie"],
         "alice and charlie are not neighbours"),
        (["--network", f"{EXAMPLES}/decoy-bb84.yaml", "--qkd", "decoy-bb84", "--from", "alice", "--to", "bob",
          "--nu", "0.6"], "signal > decoy + vacuum"),
        (["--network", f"{EXAMPLES}/decoy-bb84.yaml", "--qkd", "bb84-wcp", "--from", "alice", "--to", "bob",
          "--eavesdrop", "all"], "--eavesdrop takes pns"),
        (["--network", f"{EXAMPLES}/satellite-relay.yaml", "--qkd", "decoy-bb84", "--from", "micius", "--to",
          "graz", "--pulses", "1000"], "--pulses does not apply over satellite links"),
        (["--network", f"{EXAMPLES}/satellite-relay.yaml", "--qkd", "bb84-wcp", "--from", "micius", "--to",
          "graz"], "over satellite links: decoy-bb84 only"),
    ]
    for args, message in bad:
        proc = run(*args, expect=1)
        check(message in proc.stderr, f"qnetsim {' '.join(args)}: '{message}' in {proc.stderr!r}")

    # One flag style: dashes, the old underscores still taken with a note;
    # --help exits 0 and lists the options in the dash spelling.
    proc = run("--help")
    check("--min-fidelity" in proc.stdout and "--pairs-per-block" in proc.stdout and "Flags from" not in proc.stdout,
          f"--help lists the dash spellings: {proc.stdout[:400]!r}")
    dashed = run("--network", f"{EXAMPLES}/ideal-pair.yaml", "--pairs", "20", "--min-fidelity", "0.5", "--output", "json")
    check(dashed.stderr == "" and json.loads(dashed.stdout)["links"][0]["pairs"] == 20, "--min-fidelity is taken")
    old = run("--network", f"{EXAMPLES}/ideal-pair.yaml", "--pairs", "20", "--min_fidelity", "0.5", "--output", "json")
    check("--min_fidelity is spelled --min-fidelity now" in old.stderr, f"the old spelling's note: {old.stderr!r}")
    figures = lambda out: {k: v for k, v in json.loads(out)["links"][0].items() if k != "wall_seconds"}
    check(figures(old.stdout) == figures(dashed.stdout), "the old spelling runs the same (same seed, same figures)")
    unknown = run("--network", f"{EXAMPLES}/ideal-pair.yaml", "--min-fidelty", "0.5", expect=1)
    check(unknown.stderr == "qnetsim: error: unknown option --min-fidelty (see --help)\n", f"unknown option: {unknown.stderr!r}")
finally:
    shutil.rmtree(work, ignore_errors=True)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
