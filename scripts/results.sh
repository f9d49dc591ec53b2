#!/usr/bin/env bash
# The comparison of docs/results.md (issue #7), from nothing or from the committed results/.
#
#   scripts/results.sh run       data + base models for vu, gvqa, vu2, gvqa2 (if missing), every run
#                                of jobs/sweep.txt and jobs/sweep-v2.txt under mpirun (resumes, skips
#                                finished runs), then copies each run's metrics.h5 into results/runs/
#                                and makes the tables
#   scripts/results.sh collect   after `sbatch --array=0-122 jobs/sweep.sbatch` and `sbatch
#                                --array=0-71 jobs/sweep.sbatch jobs/sweep-v2.txt`: copy the metrics
#                                of runs/sweep/* into results/runs/, then make the tables
#   scripts/results.sh rounds    the round-budget study (issue #19): data + base models if missing,
#                                every run of jobs/sweep-rounds.txt into runs/rounds (resumes, skips
#                                finished runs), their metrics into results/rounds/, the tables
#   scripts/results.sh tables    only the tables, from results/runs/ (no training; a few seconds),
#                                and copies them into docs/results.md (scripts/studies/fill_tables.py)
#   scripts/results.sh check     the tables from results/runs/, compared with the committed ones
#
# The tables are `pilot report` outputs, one per table of the paper (and tuning-vu, tuning-gvqa, the
# learning-rate grids of results/tuning/): results/tables/<name>.md
# (markdown, what docs/results.md shows), <name>.csv (tidy) and, for the method comparisons, a
# plot of the score per round (<name>.svg). Set SWEEP_FILTER to run only some lines (e.g.
# 'configs/vu/') and SWEEP_ROOT to put the run directories elsewhere (default runs/sweep).
# walltime.md (seconds per run, from metrics.h5) needs h5py: /usr/bin/python3, or set PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-}
PILOT=${PILOT_BIN:-.build/release/pilot}
RUNS=results/runs
. jobs/lib.sh   # pilot_run_name
ROOT=${SWEEP_ROOT:-runs/sweep}

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

prepare() {
  bash scripts/bootstrap.sh
  echo "== build (release)"
  swift build -c release --product pilot 2>&1 | tail -n 1
  local entry s scenario version
  # data/vu and data/gvqa: task version 1 (Tables 1-6); data/vu2 and data/gvqa2: task version 2.
  for entry in vu:vu:1 gvqa:gvqa:1 vu2:vu:2 gvqa2:gvqa:2; do
    IFS=: read -r s scenario version <<<"$entry"
    # The benchmark is generated afresh (about a second) and compared with data/$s: data made by
    # an older generator or with other flags is replaced, and its base model retrained.
    local fresh
    fresh=$(mktemp -d)
    "$PILOT" data generate --scenario "$scenario" --task-version "$version" --size small --seed 1 --out "$fresh/$s" >/dev/null
    local same=1 f
    for f in scenario.json pretrain.h5 tokenizer.h5 clients/client-00.h5 clients/client-08.h5; do
      cmp -s "$fresh/$s/$f" "data/$s/$f" || same=0
    done
    if [ $same = 0 ]; then
      echo "== data/$s: the benchmark data (pilot data generate --scenario $scenario --task-version $version --size small --seed 1)"
      rm -rf "data/$s"; mkdir -p data; mv "$fresh/$s" "data/$s"
    fi
    rm -rf "$fresh"
    if [ ! -f "data/$s/base.h5" ]; then
      echo "== pilot pretrain data/$s (mpirun -np 2)"
      bash scripts/mpirun.sh -np 2 "$PILOT" pretrain --data "data/$s" --out "data/$s/base.h5" --eval-test 200
    fi
  done
}

# collect [FROM [TO]]: the metrics of the finished runs of FROM (default $ROOT) into TO (default $RUNS).
collect() {
  local from=${1:-$ROOT} to=${2:-$RUNS}
  mkdir -p "$to"
  local n=0
  for d in "$from"/*/; do
    d=${d%/}
    [ -f "$d/metrics.h5" ] || continue
    # Only finished runs: the newest checkpoint is the last round of the run's config.
    local rounds latest
    rounds=$(sed -n 's/^rounds *= *\([0-9]*\).*/\1/p' "$d/config.toml" 2>/dev/null | head -1)
    latest=$(cat "$d/ckpt/latest" 2>/dev/null || true)
    if [ -z "$rounds" ] || [ "$latest" != "$(printf 'round_%03d.h5' "$rounds")" ]; then
      echo "   $(basename "$d"): not finished ($latest of ${rounds:-?} rounds), not copied"
      continue
    fi
    mkdir -p "$to/$(basename "$d")"
    cp "$d/metrics.h5" "$to/$(basename "$d")/metrics.h5"
    n=$((n + 1))
  done
  echo "== copied the metrics of $n runs into $to"
}

# table NAME RUN_DIR... [-- pilot report options]: one table from the runs that exist.
table() {
  local name=$1; shift
  local dirs=() opts=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    [ -f "$1/metrics.h5" ] && dirs+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  # Options, minus the --label of a run that does not exist (yet).
  while [ $# -gt 0 ]; do
    if [ "$1" = "--label" ]; then
      local keep=0 d
      for d in "${dirs[@]}"; do [[ "$2" == *"=$d" ]] && keep=1; done
      [ $keep = 1 ] && opts+=("$1" "$2")
      shift 2
    else
      opts+=("$1"); shift
    fi
  done
  if [ ${#dirs[@]} -eq 0 ]; then echo "   $name: no runs yet, skipped"; return; fi
  "$PILOT" report "${dirs[@]}" "${opts[@]}" --csv "$OUT/$name.csv" > "$OUT/$name.md"
  echo "   $name: ${#dirs[@]} runs -> $OUT/$name.md"
}

methods="local centralized fedavg fedprox fedadam shepherd feddpa pilot"
seeds="1 2 3"

tables() {
  OUT=${1:-results/tables}
  mkdir -p "$OUT"
  echo "== tables from $RUNS into $OUT"
  # The learning-rate grids (seed 1, scored on test examples 200-299; docs/calibration.md §3).
  # The vu grid chose the shipped values; the gvqa grid checks whether they transfer.
  table "tuning-vu" results/tuning/vu-*
  table "tuning-gvqa" results/tuning/gvqa-*
  # Follow-up of the Pilot-vs-local gap: both with 6 rounds instead of 3 (seed 1, vu).
  table "rounds-vu" results/investigate/vu-local-R6-s1 results/investigate/vu-pilot-R6-s1
  # Tables 1-2 on task version 1 (vu, gvqa) and on task version 2 (vu2, gvqa2; jobs/sweep-v2.txt).
  for s in vu gvqa vu2 gvqa2; do
    local dirs=()
    for m in $methods; do for k in $seeds; do dirs+=("$RUNS/$s-$m-s$k"); done; done
    local plot=()
    [ "$OUT" = results/tables ] && plot=(--plot "$OUT/methods-$s.svg")
    table "methods-$s" "${dirs[@]}" -- "${plot[@]}"
  done
  # Table 2b: gvqa with gvqa's own tuning choices, i.e. the "Table 2b" lines of jobs/sweep.txt
  # (read from there, so the list is kept in one place); local's choice is vu's, so its runs are
  # Table 2's.
  local t2b=() labels=() line cfg seed name
  for k in $seeds; do t2b+=("$RUNS/gvqa-local-s$k"); done
  labels+=(--label "local=$RUNS/gvqa-local-s1")
  while read -r cfg seed line; do
    read -r -a o <<<"$line"
    name=$(pilot_run_name "$cfg" "$seed" "${o[@]}")
    t2b+=("$RUNS/$name")
    [ "$seed" = 1 ] && labels+=(--label "$(basename "$cfg" .toml)=$RUNS/$name")
  done < <(sed -n '/^# Table 2b/,$p' jobs/sweep.txt | sed -e 's/#.*//' | grep -v '^[[:space:]]*$')
  local plot2b=()
  [ "$OUT" = results/tables ] && plot2b=(--plot "$OUT/methods-gvqa-tuned.svg")
  table "methods-gvqa-tuned" "${t2b[@]}" -- "${labels[@]}" "${plot2b[@]}"
  # The round budget (issue #19, jobs/sweep-rounds.txt): every method for 10 rounds on vu and vu2,
  # scored at rounds 3, 6 and 10, and the averages at every round with their plot.
  for s in vu vu2; do
    local rdirs=()
    for m in $methods; do for k in $seeds; do rdirs+=("results/rounds/$s-$m-s$k-run.rounds=10"); done; done
    local r
    for r in 3 6 10; do table "rounds-$s-r$r" "${rdirs[@]}" -- --round "$r"; done
    local rplot=()
    [ "$OUT" = results/tables ] && rplot=(--plot-average "$OUT/rounds-$s-by-round.svg")
    table "rounds-$s-by-round" "${rdirs[@]}" -- --by-round "${rplot[@]}"
    # Pilot against each method at every round, marked where the gap exceeds a seed std.
    if [ -f "$OUT/rounds-$s-by-round.csv" ]; then
      python3 scripts/studies/round_budget.py "$OUT/rounds-$s-by-round.csv" > "$OUT/rounds-$s-claims.md"
      echo "   rounds-$s-claims: pilot against each method per round -> $OUT/rounds-$s-claims.md"
    fi
  done
  "${PYTHON:-/usr/bin/python3}" scripts/studies/walltime.py "$RUNS"/* > "$OUT/walltime.md"
  echo "   walltime: seconds per run -> $OUT/walltime.md"
  # Ablations: Tables 3, 5 and 6 on vu and gvqa; Table 3 only on vu2 and gvqa2 (jobs/sweep-v2.txt).
  for s in vu gvqa vu2 gvqa2; do
    if ! compgen -G "$RUNS/$s-pilot-s*-pilot.*" >/dev/null; then
      echo "   ablations of $s: no ablation runs yet, skipped"
      continue
    fi
    local full=() t3=() t5=() t6=()
    for k in $seeds; do full+=("$RUNS/$s-pilot-s$k"); done
    local p="$RUNS/$s-pilot-s"
    for k in $seeds; do
      t3+=("$RUNS/$s-fedavg-s$k"
           "${p}$k-pilot.cross_task=false-pilot.diff_loss=false-pilot.aux_losses=false-pilot.ata=false"
           "${p}$k-pilot.cross_task=false-pilot.aux_losses=false-pilot.ata=false"
           "${p}$k-pilot.aux_losses=false-pilot.ata=false"
           "${p}$k-pilot.ata=false")
      t5+=("${p}$k-pilot.ata_selection=same_task" "${p}$k-pilot.ata_selection=all"
           "${p}$k-pilot.ata_m=5" "${p}$k-pilot.ata_m=7")
      t6+=("${p}$k-pilot.cross_task_init=random")
    done
    table "ablation-components-$s" "${t3[@]}" "${full[@]}" -- \
      --label "FedAvg=$RUNS/$s-fedavg-s1" \
      --label "+ two-stage connector, task-wise aggregation=${p}1-pilot.cross_task=false-pilot.diff_loss=false-pilot.aux_losses=false-pilot.ata=false" \
      --label "+ difference loss=${p}1-pilot.cross_task=false-pilot.aux_losses=false-pilot.ata=false" \
      --label "+ cross-task adapters=${p}1-pilot.aux_losses=false-pilot.ata=false" \
      --label "+ auxiliary losses=${p}1-pilot.ata=false" \
      --label "+ ATA (Pilot)=${p}1"
    case $s in *2) continue ;; esac
    table "ablation-ata-$s" "${t5[@]}" "${full[@]}" -- \
      --label "same task=${p}1-pilot.ata_selection=same_task" --label "all clients=${p}1-pilot.ata_selection=all" \
      --label "top-M, M=5=${p}1-pilot.ata_m=5" --label "top-M, M=6 (Pilot)=${p}1" --label "top-M, M=7=${p}1-pilot.ata_m=7"
    table "ablation-init-$s" "${t6[@]}" "${full[@]}" -- \
      --label "random init=${p}1-pilot.cross_task_init=random" --label "copy of the task adapter (Pilot)=${p}1"
  done
}

case "$MODE" in
  run)
    prepare
    for list in jobs/sweep.txt jobs/sweep-v2.txt; do
      echo "== sweep: $list -> $ROOT"
      bash scripts/sweep_local.sh "$list" "$ROOT" "${SWEEP_FILTER:-}"
    done
    collect
    tables
    python3 scripts/studies/fill_tables.py docs/results.md results/tables
    ;;
  rounds)
    prepare
    echo "== sweep: jobs/sweep-rounds.txt -> runs/rounds"
    bash scripts/sweep_local.sh jobs/sweep-rounds.txt runs/rounds "${SWEEP_FILTER:-}"
    collect runs/rounds results/rounds
    tables
    python3 scripts/studies/fill_tables.py docs/results.md results/tables
    ;;
  collect)
    collect
    [ -d runs/rounds ] && collect runs/rounds results/rounds
    tables
    python3 scripts/studies/fill_tables.py docs/results.md results/tables
    ;;
  tables)
    tables
    python3 scripts/studies/fill_tables.py docs/results.md results/tables
    ;;
  check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    tables "$tmp"
    status=0
    for f in results/tables/*.md results/tables/*.csv; do
      if ! cmp -s "$f" "$tmp/$(basename "$f")"; then
        echo "DIFFERS: $f"; diff "$f" "$tmp/$(basename "$f")" | head -20; status=1
      fi
    done
    [ $status = 0 ] && echo "== every table in results/tables is reproduced by pilot report on $RUNS"
    exit $status
    ;;
  *) usage ;;
esac
