#!/usr/bin/env bash
# Installs qnet twice, with `cmake --install` into a fresh prefix and as the
# .deb `cpack` makes, installed by dpkg into a fresh root, and runs a
# network from each: `qnetctl up` must find the qnetd installed beside it.
# Checks the man pages and qnetctl's bash completion on the way.
# Usage: install_mptest.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
work=$(mktemp -d "${TMPDIR:-/tmp}/qnet-install-XXXXXX")
prefix=$work/prefix root=$work/root
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() {
  for state in "$work/state" "$work/state-deb"; do
    [ -f "$state/network" ] && "$prefix/bin/qnetctl" --state-dir "$state" down >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
cd /  # nothing may depend on the source or build directory

# A network from an installed tree: up, a request, status, down.
run_network() {  # bin_dir examples_dir state_dir
  local bin=$1 examples=$2 state=$3 out
  # qnetd is not on PATH: qnetctl must find the one installed beside it.
  out=$(PATH=/usr/bin:/bin "$bin/qnetctl" up "$examples/ideal-pair.yaml" --state-dir "$state" --time-scale 10) ||
    fail "qnetctl up from $bin: $out"
  grep -q "network ideal-pair up" <<<"$out" || fail "up said: $out"
  out=$("$bin/qnetctl" --state-dir "$state" --node alice entangle --with bob --pairs 10 --type measure 2>&1) ||
    fail "entangle: $out"
  grep -q "10 pairs in" <<<"$out" || fail "entangle said: $out"
  # The daemons are the installed ones.
  daemons=$(for pid in $(cat "$state"/*.pid); do readlink "/proc/$pid/exe"; done | sort -u)
  [ "$daemons" = "$bin/qnetd" ] || fail "the daemons are $daemons, not $bin/qnetd"
  "$bin/qnetctl" --state-dir "$state" down >/dev/null || fail "down"
  out=$("$bin/qnetsim" --network "$examples/ideal-pair.yaml" --pairs 100 2>&1) || fail "qnetsim: $out"
}

# 1. cmake --install
cmake --install "$build" --prefix "$prefix" >/dev/null
for program in qnetd qnetctl qnetsim; do
  [ -x "$prefix/bin/$program" ] || fail "no $prefix/bin/$program"
  page=$prefix/share/man/man1/$program.1
  head -1 "$page" | grep -q "^\.TH $program 1 " || fail "$page is not a man page"
  # The page is the program's own help: its usage line is there.
  help=$("$prefix/bin/$program" --help) || fail "$program --help failed"
  usage=$(grep -m1 '^Usage: ' <<<"$help") || fail "$program --help has no Usage line"
  [ -n "$usage" ] && grep -qF -- "${usage//\\/\\e}" "$page" || fail "$page is not $program --help"
done
grep -q '^\.SS entangle$' "$prefix/share/man/man1/qnetctl.1" || fail "qnetctl.1 has no entangle section"
[ -f "$prefix/share/qnet/examples/ideal-pair.yaml" ] || fail "no examples"
completion=$prefix/share/bash-completion/completions/qnetctl
[ -f "$completion" ] || fail "no bash completion"
run_network "$prefix/bin" "$prefix/share/qnet/examples" "$work/state"
# The README's relative examples/ path, away from a source tree: pointed to the installed ones.
out=$("$prefix/bin/qnetctl" up examples/ideal-pair.yaml --state-dir "$work/state-x" 2>&1) && fail "up of a missing file: $out"
grep -qF "the example networks are installed in $(realpath "$prefix/share/qnet/examples")" <<<"$out" ||
  fail "up examples/ideal-pair.yaml from / said: $out"
echo "cmake --install: ok"

# 2. Bash completion, against the installed qnetctl.
complete_words() {  # words... (the last one is being completed)
  PATH="$prefix/bin:/usr/bin:/bin" bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _qnetctl
                                             printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$@"
}
[ "$(complete_words qnetctl ent)" = "entangle" ] || fail "qnetctl ent<TAB>: $(complete_words qnetctl ent)"
got=$(complete_words qnetctl --node alice e)  # alice is --node's value, not the command
grep -qx entangle <<<"$got" && grep -qx eavesdrop <<<"$got" || fail "qnetctl --node alice e<TAB>: $got"
[ "$(complete_words qnetctl --node alice entangle --pa)" = "--pairs" ] || fail "entangle --pa<TAB>"
[ "$(complete_words qnetctl --output j)" = "json" ] || fail "--output j<TAB>"
got=$(complete_words qnetctl --state-dir = /x st)  # bash's words for --state-dir=/x st<TAB>
grep -qx status <<<"$got" || fail "qnetctl --state-dir=/x st<TAB>: $got"
[ -z "$(complete_words qnetctl --node alice entangle --pairs "")" ] || fail "--pairs <TAB> offered something"
got=$(complete_words qnetctl --node alice entangle --)
grep -qx -- --pairs <<<"$got" && grep -qx -- --network <<<"$got" || fail "entangle --<TAB>: $got"
[ "$(sort <<<"$got" | uniq -d)" = "" ] || fail "entangle --<TAB> offers a flag twice: $got"
! grep -qx -e --from -e --keep-hold <<<"$got" || fail "entangle --<TAB> offers flags entangle refuses: $got"
got=$(complete_words qnetctl --quiet st)  # --quiet takes no value: st is the command
grep -qx status <<<"$got" || fail "qnetctl --quiet st<TAB>: $got"
echo "completion: ok"

# 3. The .deb, installed into a fresh root.
for tool in cpack dpkg-deb dpkg-shlibdeps file; do
  command -v "$tool" >/dev/null || fail "$tool is missing (./qnet installs dpkg-dev and file)"
done
(cd "$build" && cpack -B "$work/pkg" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/pkg/qnet_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
grep -q "libgrpc++" <<<"$depends" || fail "the .deb's Depends lacks libgrpc++: $depends"
# Installed by dpkg itself into a fresh root with its own, empty package
# database (no chroot or container: the programs then run on this host's
# libraries, which are the Depends below).
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --log="$work/dpkg.log" --force-not-root --force-depends --force-script-chrootless \
  -i "$deb" >"$work/dpkg.out" 2>&1 || { cat "$work/dpkg.out" >&2; fail "dpkg -i into a fresh root"; }
dpkg --root="$root" -s qnet | grep -qx "Status: install ok installed" || fail "dpkg does not list qnet as installed"
[ -f "$root/usr/share/man/man1/qnetctl.1" ] || fail "the .deb has no man page"
# Every dependency is a package of this system's Debian archive, so apt can
# install the .deb on a clean Debian 12 (a simulation: nothing is changed).
if compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
  for dep in $(tr ',' '\n' <<<"$depends" | sed 's/(.*//; s/|.*//' | tr -d ' '); do
    apt-cache show --no-all-versions "$dep" >/dev/null 2>&1 || fail "dependency $dep is not in the apt archive"
  done
  apt-get -s install "$deb" >"$work/apt.out" 2>&1 || { cat "$work/apt.out" >&2; fail "apt-get -s install of the .deb"; }
else
  echo "note: no apt package lists here (apt-get update not run): the Depends were not resolved against the archive"
fi
run_network "$root/usr/bin" "$root/usr/share/qnet/examples" "$work/state-deb"
echo ".deb ($(du -k "$deb" | cut -f1) KiB, Depends: $depends): ok"
