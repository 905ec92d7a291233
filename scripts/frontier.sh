#!/usr/bin/env bash
# The static frontier and the adaptive policies of one model on its dev text, as published in
# docs/results.md: kvbits-eval over the whole static grid (K/V widths, float window, sinks, key
# transform, group size, and hard fp16 windows), the tiered configurations chosen for three
# budgets, wider tiered configurations held to each budget by BudgetPolicy, and a random policy
# with each tiered configuration's final width mix. Writes JSON to OUT_DIR and prints the Markdown report.
#
# usage: scripts/frontier.sh stories260K|bible919K [OUT_DIR] [EVAL_BINARY] [kvbits-eval options]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: scripts/frontier.sh stories260K|bible919K [OUT_DIR] [EVAL_BINARY] [options]}"
out="${2:-build/frontier/$model}"
eval_binary="${3:-build/examples/kvbits-eval}"
shift $(( $# >= 3 ? 3 : $# ))
shared="${KVBITS_SHARED_DIR:-../shared}"
mkdir -p "$out"

static=()
case "$model" in
  stories260K)
    text="$shared/data/tinystories_valid_dev.txt"
    # head_dim 8: one group per head vector (4 bits/element of fp16 metadata at asymmetric).
    for kv in 4,2 4,3 5,2 5,3 4,4 6,3 5,4 6,4 8,3 8,4 6,6 8,6 8,8; do
      for extra in "" ",w=8" ",w=16" ",w=32" ",s=4,w=16"; do
        for transform in "" ",t=scale"; do static+=("static:$kv$extra$transform"); done
      done
      for window in 4 8 16 32; do static+=("tiers:$window=16/16,*=${kv/,//},t=scale"); done
    done
    # Budgets ~7.5, ~8.5, ~10 bits/element: widths graded by age, keys of much-attended tokens
    # one step wider (k+=0.05).
    tiers=(
      "tiers:1=16/16,4=8/8,16=6/4,64=5/3,*=4/2,k+=0.05,t=scale"
      "tiers:4=16/16,16=8/6,64=6/4,*=5/3,k+=0.05,t=scale"
      "tiers:4=16/16,16=8/8,64=8/6,*=6/4,k+=0.05,t=scale"
    )
    budgets=(7.5 8.5 10)
    # Wider tiered configurations the budget lowers to each target.
    budget_inners=(
      "tiers:4=16/16,16=8/6,64=6/4,*=6/4,t=scale"
      "tiers:4=16/16,16=8/8,64=8/6,*=8/4,t=scale"
      "tiers:4=16/16,16=8/8,64=8/8,*=8/8,t=scale"
    )
    ;;
  bible919K)
    text="$shared/data/bible_dev.txt"
    for kv in 2,2 3,2 2,3 3,3 4,2 2,4 4,3 3,4 4,4 5,4 4,5 5,5 6,4 6,6 8,4 8,8; do
      for extra in "" ",w=16" ",w=32" ",s=4,w=16"; do
        for transform in "" ",t=hadamard" ",t=scale"; do static+=("static:$kv,g=32$extra$transform"); done
        for transform in "" ",t=hadamard"; do static+=("static:$kv,g=64$extra$transform"); done
      done
      for window in 4 8 16 32; do static+=("tiers:$window=16/16,*=${kv/,//},g=32"); done
    done
    # Budgets ~3.5, ~4.5, ~6 bits/element: widths graded by age over a K2/V2, K3/V3, K5/V4 base.
    tiers=(
      "tiers:1=16/16,4=8/8,16=6/6,48=4/4,*=2/2,g=32"
      "tiers:4=16/16,16=8/8,64=4/4,*=3/3,g=32"
      "tiers:4=16/16,16=8/8,64=6/6,*=5/4,g=32"
    )
    budgets=(3.5 4.5 6)
    budget_inners=(
      "tiers:1=16/16,4=8/8,16=6/6,*=4/4,g=32"
      "tiers:4=16/16,16=8/8,64=6/6,*=4/4,g=32"
      "tiers:4=16/16,16=8/8,64=6/6,*=6/6,g=32"
    )
    ;;
  *)
    echo "frontier.sh: unknown model $model (stories260K or bible919K)" >&2
    exit 2
    ;;
esac

# kvbits-eval over a list of policies, written to one JSON file (kept when it exists and
# KVBITS_FRONTIER_REUSE=1, e.g. after changing only the adaptive policies).
run_eval() {
  local json="$1"
  shift
  if [[ "${KVBITS_FRONTIER_REUSE:-0}" == 1 && -s "$json" ]]; then return; fi
  local arguments=()
  for policy in "$@"; do arguments+=(--policy "$policy"); done
  "$eval_binary" --model "$shared/models/$model.gguf" --text "$text" --json - "${arguments[@]}" \
    "${extra_options[@]}" > "$json" 2> /dev/null
}
extra_options=("$@")

adaptive=(fp32 fp16 "${tiers[@]}")
for i in "${!budgets[@]}"; do adaptive+=("budget:${budgets[$i]}:${budget_inners[$i]}"); done
half=$(( ${#static[@]} / 2 ))
# Two processes, one per core.
run_eval "$out/static_a.json" "${static[@]:0:$half}" &
run_eval "$out/static_b.json" "${static[@]:$half}" &
run_eval "$out/adaptive.json" "${adaptive[@]}"
wait
mapfile -t random < <(python3 scripts/frontier_report.py random-mixes "$out/adaptive.json" "${tiers[@]}")
run_eval "$out/random.json" "${random[@]}"
python3 scripts/frontier_report.py report --model "$model" --budgets "${budgets[@]}" --tiers "${tiers[@]}" \
  --budget-inners "${budget_inners[@]}" \
  -- "$out"/static_a.json "$out"/static_b.json "$out"/adaptive.json "$out"/random.json
