#!/usr/bin/env bash
# The node's memory as a job uses it: the PSS (proportional set size: each shared page divided among the
# processes that map it) of every process of the command, summed, sampled every INTERVAL seconds while it
# runs. RSS would count a page shared by N ranks N times; PSS counts it once in total. Prints the peak
# node PSS, the split at that moment (anonymous memory, file mappings, shared memory) and each process's
# PSS then, as one JSON line on stdout after the command's own output (which goes to stderr).
#
#   scripts/bench/node_pss.sh [-i INTERVAL] [-m NAME] -- CMD ARGS...
#   e.g. scripts/bench/node_pss.sh -- scripts/mpirun.sh -np 4 .build/release/pilot train --config configs/tiny-smollm2/pilot.toml --out /tmp/r
#
# -m NAME: which of the command's descendants count (default: those whose command name is "pilot"; the
# launcher's own processes, mpirun and its daemons, are not counted, nor anything outside the command's
# process tree). Linux only (/proc/PID/smaps_rollup, kernel ≥ 4.14).
set -euo pipefail
INTERVAL=0.5
NAME=pilot
while [ $# -gt 0 ]; do
  case "$1" in
    -i) INTERVAL=$2; shift 2 ;;
    -m) NAME=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [-i INTERVAL] [-m NAME] -- CMD ARGS..." >&2; exit 2; }
[ -r /proc/self/smaps_rollup ] || { echo "node_pss.sh: /proc/self/smaps_rollup is missing (Linux ≥ 4.14 needed)" >&2; exit 2; }

"$@" >&2 &
pid=$!
peak=0; peak_line='{}'
descendants() {   # every process below $1 (children first found by their parent pid)
  local c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done
}
sample() {
  # one pass over the matching processes: total PSS and its parts, in kB, and each process's PSS
  local total=0 anon=0 file=0 shmem=0 procs="" p
  for p in $(descendants "$pid"); do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = "$NAME" ] || continue
    local vals
    vals=$(awk '/^Pss:/{t=$2} /^Pss_Anon:/{a=$2} /^Pss_File:/{f=$2} /^Pss_Shmem:/{s=$2} END{print t+0, a+0, f+0, s+0}' /proc/$p/smaps_rollup 2>/dev/null) || continue
    set -- $vals
    total=$((total + $1)); anon=$((anon + $2)); file=$((file + $3)); shmem=$((shmem + $4))
    procs="$procs${procs:+,}$1"
  done
  if [ "$total" -gt "$peak" ]; then
    peak=$total
    peak_line="{\"peak_node_pss_mb\": $((total / 1024)), \"anon_mb\": $((anon / 1024)), \"file_mb\": $((file / 1024)), \"shmem_mb\": $((shmem / 1024)), \"per_process_pss_kb\": [$procs]}"
  fi
}
while kill -0 "$pid" 2>/dev/null; do sample; sleep "$INTERVAL"; done
rc=0; wait "$pid" || rc=$?
echo "$peak_line"
exit "$rc"
