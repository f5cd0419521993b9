#!/usr/bin/python3
"""Every command in README.md's code blocks, run as a new user would.

- ```sh blocks run as written, one bash script per block (set -euo
  pipefail), with the build's qnetctl, qnetd and qnetsim first on PATH, a
  fresh HOME (so ~/.local/state/qnet is new) and a fresh working directory
  holding the repository's examples/. Two kinds of line are not run as
  written, and say so: `./qnet ...` (this test runs inside `./qnet test`),
  and `prometheus ...`, a server on 0.0.0.0:9090, whose configuration file
  is checked with `promtool check config` instead.
- Plain blocks are synopses: each `qnetctl COMMAND`, `qnetsim` and `qnetd`
  line (with its continuation lines) names a command the program has, and
  every --flag on it is in that command's --help or the global one.
- ```yaml blocks: the network file loads in qnetsim and runs; the
  key_management fragment loads appended to a three-node network.
Any failure names the README line. Usage: readme_commands_mptest.py BUILD SOURCE
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

build, source = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
bins = {name: os.path.join(build, sub, name) for name, sub in
        (("qnetctl", "cli"), ("qnetd", "daemon"), ("qnetsim", "netsim"))}
failures = []


def fail(line, what):
    failures.append(f"README.md:{line}: {what}")
    print(f"FAIL README.md:{line}: {what}", flush=True)


def blocks():
    """(language, first line number of the body, body lines) of each fenced block."""
    lines = open(os.path.join(source, "README.md"), encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, body = i + 2, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        yield m.group(1), start, body


def helps(program, command=None):
    args = [bins[program]] + ([command] if command else []) + ["--help"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def check_synopsis(start, body):
    entries = []  # (line number, text joined with its continuation lines)
    for n, text in enumerate(body, start):
        code = text.split("#", 1)[0].rstrip()
        if re.match(r"^(qnetctl|qnetsim|qnetd)\b", code):
            entries.append([n, code])
        elif code.startswith(" ") and entries and code.strip():
            entries[-1][1] += " " + code.strip()
        elif code.startswith("any of these") and entries:
            entries[-1][1] += " " + code
    for n, code in entries:
        words = code.split()
        program = words[0]
        command = None
        if program == "qnetctl":
            # The command is the first word that is not a flag or a flag's value.
            i = 1
            while i < len(words):
                if words[i].startswith("--"):
                    i += 2 if "=" not in words[i] else 1
                    continue
                command = words[i]
                break
        rc, text = helps(program, command)
        if rc != 0:
            fail(n, f"`{program} {command or ''} --help` exits {rc}")
            continue
        known = set(re.findall(r"--[a-z][a-z-]*", text))
        if program == "qnetctl":
            # Only the global options, not every flag the command list mentions.
            general = helps("qnetctl")[1]
            known |= set(re.findall(r"--[a-z][a-z-]*", general[general.find("Global options"):]))
        for flag in re.findall(r"--[a-z][a-z-]*", code):
            if flag not in known:
                fail(n, f"{flag} is not in `{program} {command or ''} --help`")
    if not entries:
        fail(start, "a plain block that is not a synopsis of qnetctl, qnetsim or qnetd (mark runnable blocks sh)")
    print(f"synopsis at line {start}: {len(entries)} commands checked", flush=True)


def run_sh(start, body, env, cwd):
    script, notes = ["set -euo pipefail"], []
    for n, text in enumerate(body, start):
        stripped = text.strip()
        if stripped.startswith("./qnet "):
            notes.append(f"line {n} not run: `./qnet` runs this test")
            script.append(": " + stripped.split("#")[0])
            continue
        if stripped.startswith("prometheus"):
            m = re.match(r'^prometheus --config.file[ =]"?([^" ]+)"?', stripped)
            if not m:
                fail(n, "a prometheus line without --config.file first: the test would start a server")
                return
            notes.append(f"line {n}: a server on 0.0.0.0:9090; its config is checked with promtool instead")
            script.append(f'promtool check config "{m.group(1)}" >/dev/null')
            continue
        script.append(text)
    print(f"running the block at line {start} ({'; '.join(notes) or 'every line'})", flush=True)
    proc = subprocess.Popen(["bash", "-c", "\n".join(script)], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        fail(start, f"the block did not finish in 900 s:\n{out[-3000:]}")
        return
    if proc.returncode != 0:
        fail(start, f"the block exits {proc.returncode}:\n{out[-3000:]}")
    else:
        print("\n".join("    " + line for line in out.splitlines()[-6:]), flush=True)
    stop_networks(env)  # a failed block's network must not confuse the next block


def stop_networks(env):
    root = os.path.join(env["HOME"], ".local", "state", "qnet")
    if os.path.isdir(root):
        for name in os.listdir(root):
            if os.path.exists(os.path.join(root, name, "network")):
                subprocess.run([bins["qnetctl"], "--state-dir", os.path.join(root, name), "down"], env=env,
                               capture_output=True, timeout=60)


def check_yaml(start, body, work):
    text = "\n".join(body) + "\n"
    if not re.search(r"^network:", text, re.M):
        text = ("network: readme-fragment\nnodes:\n  - {name: alice, hardware: ideal}\n"
                "  - {name: bob, hardware: ideal}\n  - {name: charlie, hardware: ideal}\nlinks:\n"
                "  - {between: [alice, bob], length_km: 1}\n  - {between: [bob, charlie], length_km: 1}\n") + text
    path = os.path.join(work, f"readme-{start}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    r = subprocess.run([bins["qnetsim"], "--network", path, "--pairs", "20"], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        fail(start, f"the network file does not run in qnetsim: {r.stdout[-500:]}{r.stderr[-500:]}")
    else:
        print(f"network file at line {start}: loads and runs", flush=True)


def main():
    work = tempfile.mkdtemp(prefix="qnet-readme-")
    home = os.path.join(work, "home")
    cwd = os.path.join(work, "cwd")
    os.makedirs(home)
    os.makedirs(cwd)
    os.symlink(os.path.join(source, "examples"), os.path.join(cwd, "examples"))
    env = {k: v for k, v in os.environ.items() if k not in ("QNET_STATE_DIR", "XDG_STATE_HOME")}
    env["HOME"] = home
    env["PATH"] = ":".join(os.path.dirname(b) for b in bins.values()) + ":/usr/bin:/bin"
    counts = {"sh": 0, "yaml": 0, "": 0}
    try:
        for language, start, body in blocks():
            if language not in counts:
                fail(start, f"a ```{language} block: this test knows sh, yaml and plain (synopsis) blocks")
                continue
            counts[language] += 1
            if language == "sh":
                run_sh(start, body, env, cwd)
            elif language == "yaml":
                check_yaml(start, body, work)
            else:
                check_synopsis(start, body)
    finally:
        stop_networks(env)  # whatever a failed block left running
        shutil.rmtree(work, ignore_errors=True)
    for language, count in counts.items():
        if count == 0:
            fail(0, f"no {language or 'plain (synopsis)'} blocks found: the README's fences changed?")
    if failures:
        print(f"{len(failures)} README problem(s)")
        return 1
    print("every README command ran")
    return 0


sys.exit(main())
