#!/usr/bin/python3
"""Secret key rate against distance for BB84 and BBM92, beside PLOB.

Runs qnetsim over one kind of fibre and detector (0.2 dB/km; detectors of 80%
efficiency, 100 Hz dark counts in a 1 ns gate; 98% visibility) and draws, in
secret key bits per second against the end-to-end fibre length:
  - decoy-state BB84 from a 1 GHz laser: the asymptotic rate from the
    simulated counts (error bars: one standard error), the closed form of the
    same estimator, and an ideal single-photon source's closed form;
  - BBM92 over 0, 1 and 3 repeaters of ideal memories (chains of 1, 2 and 4
    equal links, heralded double-click generation, swapping), the full
    sessions through the node stacks (final key bits per simulated second);
  - the PLOB bound at the BB84 source's 10^9 channel uses per second.
Exits 1 if any measured point lies above the bound.

Usage: tools/key_rate_vs_distance.py QNETSIM QNETCTL OUT.svg|OUT.png [--quick]
(gnuplot draws the figure; --quick runs fewer pulses and points, for tests).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

QNETSIM, QNETCTL, OUT = sys.argv[1:4]
QUICK = "--quick" in sys.argv[4:]
LINK = {"detector_efficiency": 0.8, "dark_count_rate_hz": 100, "detection_window_ns": 1, "visibility": 0.98}
PULSE_RATE = 1e9  # qnetsim's BB84 source, pulses per second
MAX_KM = 300


def chain_file(work, links, length_km):
    """A chain of `links` equal links of ideal nodes with the common detectors."""
    path = os.path.join(work, f"chain-{links}.yaml")
    subprocess.run([QNETCTL, "gen", "chain", "--nodes", str(links + 1), "--length-km", str(length_km), "--out", path],
                   check=True, capture_output=True, text=True)
    with open(path) as f:
        text = f.read()
    extra = ", ".join(f"{k}: {v}" for k, v in LINK.items())
    text = text.replace(f"length_km: {length_km}}}", f"length_km: {length_km}, {extra}}}")
    with open(path, "w") as f:
        f.write(text)
    return path


def qnetsim(*args):
    proc = subprocess.run([QNETSIM, *args, "--output", "json", "--quiet"], capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode not in (0, 1):  # 1: some point failed (a block timed out far out), reported per point
        sys.exit(f"qnetsim {' '.join(args)}: {proc.stderr}")
    return json.loads(proc.stdout)


def main():
    if shutil.which("gnuplot") is None:
        print("SKIP: gnuplot is absent (Debian gnuplot-nox; ./qnet test installs it)")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="qnet-keyrate-")
    series = {}  # name -> list of (km, rate[, error])
    step = 50 if QUICK else 25
    one = chain_file(work, 1, 10)
    decoy = qnetsim("--network", one, "--qkd", "decoy-bb84", "--from", "n0", "--to", "n1",
                    "--pulses", "2000000" if QUICK else "50000000", "--sweep", f"length_km=0:{MAX_KM}:{step}")
    for p in decoy["points"]:
        km = p["length_km"]
        if "error" in p:
            continue
        if p["key_rate_per_pulse"] > 0 and p["key_rate_per_pulse"] > p["key_rate_standard_error"]:
            series.setdefault("decoy", []).append(
                (km, p["key_rate_per_pulse"] * PULSE_RATE, p["key_rate_standard_error"] * PULSE_RATE))
        for key, name in (("analytic_rate_per_pulse", "decoy-closed"),
                          ("single_photon_source_rate_per_pulse", "single-photon")):
            if p[key] > 0:
                series.setdefault(name, []).append((km, p[key] * PULSE_RATE))
    # PLOB on a finer grid than the points, from 1 km (unbounded at 0).
    series["plob"] = [(km, -math.log2(1 - 10 ** (-0.2 * km / 10)) * PULSE_RATE) for km in range(1, MAX_KM + 1, 2)]

    for repeaters in (0, 1, 3):
        links = repeaters + 1
        path = chain_file(work, links, 10)
        # Far out a block would need hours of simulated attempts: each chain
        # stops where its sessions stop finishing within the block timeout.
        # --quick: one point at 50 km and small blocks (the sanitizer build
        # runs the full sessions some 80 times slower).
        per_link_max = (50 if QUICK else {0: 150, 1: 200, 3: 300}[repeaters]) / links
        per_link_step = (50 if QUICK else step) / links
        sizes = (["--bits", "100", "--pairs-per-block", "10000", "--sample-fraction", "0.2"] if QUICK
                 else ["--bits", "1000"])
        sweep = qnetsim("--network", path, "--qkd", "bbm92", "--from", "n0", "--to", f"n{links}", *sizes,
                        "--link", "all", "--block-timeout-s", "3600", "--time-limit-s", "36000",
                        "--sweep", f"length_km={per_link_step}:{per_link_max}:{per_link_step}")
        for p in sweep["points"]:
            if "error" not in p and p["key_bits_per_second"] > 0:
                series.setdefault(f"bbm92-{repeaters}", []).append((p["length_km"] * links, p["key_bits_per_second"]))

    above = []
    for name, points in series.items():
        if name == "plob":
            continue
        for point in points:
            km, rate = point[0], point[1]
            if km > 0 and rate > -math.log2(1 - 10 ** (-0.2 * km / 10)) * PULSE_RATE:
                above.append((name, km, rate))

    data = os.path.join(work, "data")
    os.makedirs(data)
    for name, points in series.items():
        with open(os.path.join(data, name), "w") as f:
            for point in points:
                f.write(" ".join(f"{v:.9g}" for v in point) + "\n")
    terminal = "pngcairo size 1000,650" if OUT.lower().endswith(".png") else "svg size 1000,650 dynamic"
    labels = [
        ("plob", "lines dt 2 lw 2 lc rgb '#999999'", "PLOB bound, -log2(1 - eta) x 10^9 uses/s"),
        ("single-photon", "lines dt 3 lw 2 lc rgb '#e69f00'", "BB84, ideal single-photon source (closed form)"),
        ("decoy-closed", "lines dt 4 lw 2 lc rgb '#009e73'", "decoy-state BB84, closed form"),
        ("decoy", "yerrorbars pt 7 ps 0.6 lc rgb '#009e73'", "decoy-state BB84, simulated (1 standard error)"),
        ("bbm92-0", "linespoints pt 5 lc rgb '#0072b2'", "BBM92, no repeater (simulated)"),
        ("bbm92-1", "linespoints pt 9 lc rgb '#d55e00'", "BBM92, 1 repeater (simulated)"),
        ("bbm92-3", "linespoints pt 11 lc rgb '#cc79a7'", "BBM92, 3 repeaters (simulated)"),
    ]
    plots = [f"'{os.path.join(data, n)}' using 1:2{':3' if n == 'decoy' else ''} with {style} title \"{title}\""
             for n, style, title in labels if n in series]
    script = f"""set terminal {terminal}
set output '{OUT}'
set logscale y
set format y '10^{{%L}}'
set xlabel 'end-to-end fibre length (km), 0.2 dB/km'
set ylabel 'secret key bits per second'
set title 'Key rate against distance: 80% detectors, 100 Hz dark counts, 98% visibility'
set key outside below
set grid
set xrange [0:{MAX_KM}]
plot {', '.join(plots)}
"""
    os.makedirs(os.path.dirname(os.path.abspath(OUT)), exist_ok=True)
    proc = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.getsize(OUT):
        sys.exit(f"gnuplot drew nothing: {proc.stderr}")
    missing = [n for n in ("decoy", "decoy-closed", "single-photon", "bbm92-0", "bbm92-1", "bbm92-3") if n not in series]
    if missing:
        sys.exit(f"no points for {missing}")
    for name, points in sorted(series.items()):
        if name != "plob":
            print(f"{name:14s} " + "  ".join(f"{p[0]:g} km: {p[1]:.3g}/s" for p in points))
    shutil.rmtree(work, ignore_errors=True)
    print(f"figure written to {OUT}")
    if above:
        print(f"ABOVE THE PLOB BOUND: {above}")
        sys.exit(1)


main()
