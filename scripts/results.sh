#!/usr/bin/env bash
# The tables and charts of docs/results.md for one model: every policy family kvbits has
# (FP32, fp16, static widths, the best static configuration at each budget, hard fp16
# windows, tiered, budgeted, random at the tiered mix, a rule), scored by kvbits-eval on the
# model's whole dev text with multiple-choice items, speed against the FP32 cache, a Pareto
# chart and the CSV/JSON files.
#
#   scripts/results.sh MODEL [OUT_DIR] [KVBITS_EVAL] [MC_ITEMS]
#
# MODEL is stories260K or bible919K; OUT_DIR defaults to build/results/MODEL; KVBITS_EVAL to
# build-test/examples/kvbits-eval (bash scripts/test.sh builds it); MC_ITEMS to 2400.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: scripts/results.sh MODEL [OUT_DIR] [KVBITS_EVAL] [MC_ITEMS]}"
out="${2:-build/results/$model}"
eval_binary="${3:-build-test/examples/kvbits-eval}"
items="${4:-2400}"
shared="${KVBITS_SHARED_DIR:-../shared}"

case "$model" in
  stories260K)
    text="$shared/data/tinystories_valid_dev.txt"
    budgets=7.5,8.5,10
    policies=(
      fp32 fp16 static:8,8 static:4,4 static:4,4,w=32
      # the best static configuration (K/V widths, window, sinks, transform) within each budget
      static:5,2,t=scale static:5,2,w=8,t=scale "static:6,3,s=4,w=16,t=scale"
      # the best hard fp16 windows within each budget
      "tiers:16=16/16,*=4/2,t=scale" "tiers:16=16/16,*=5/3,t=scale" "tiers:32=16/16,*=6/4,t=scale"
      "tiers:1=16/16,4=8/8,16=6/4,64=5/3,*=4/2,k+=0.05,t=scale"
      "tiers:4=16/16,16=8/6,64=6/4,*=5/3,k+=0.05,t=scale"
      "tiers:4=16/16,16=8/8,64=8/6,*=6/4,k+=0.05,t=scale"
      "budget:7.5:tiers:4=16/16,16=8/6,64=6/4,*=6/4,t=scale"
      "budget:8.5:tiers:4=16/16,16=8/8,64=8/6,*=8/4,t=scale"
      "budget:10:tiers:4=16/16,16=8/8,64=8/8,*=8/8,t=scale"
      "random:16/16:880,8/8:2640,6/4:10560,5/3:42240,4/2:235855,t=scale"
      "random:16/16:3520,8/6:10560,6/4:42240,5/3:235855,t=scale"
      "random:16/16:3520,8/8:10560,8/6:42240,6/4:235855,t=scale"
      "rule:5/2,entropy>2=8/4,w=8,t=scale"
    )
    ;;
  bible919K)
    text="$shared/data/bible_dev.txt"
    budgets=3.5,4.5,6
    policies=(
      fp32 fp16 static:8,8 static:4,4 static:4,4,w=32
      "static:3,3,g=64,t=hadamard" "static:3,2,g=64,w=16" "static:4,4,g=64,w=16"
      "tiers:8=16/16,*=2/2,g=32" "tiers:8=16/16,*=3/3,g=32" "tiers:32=16/16,*=3/4,g=32"
      "tiers:1=16/16,4=8/8,16=6/6,48=4/4,*=2/2,g=32"
      "tiers:4=16/16,16=8/8,64=4/4,*=3/3,g=32"
      "tiers:4=16/16,16=8/8,64=6/6,*=5/4,g=32"
      "budget:3.5:tiers:1=16/16,4=8/8,16=6/6,*=4/4,g=32"
      "budget:4.5:tiers:4=16/16,16=8/8,64=6/6,*=4/4,g=32"
      "budget:6:tiers:4=16/16,16=8/8,64=6/6,*=6/6,g=32"
      "random:16/16:552,8/8:1656,6/6:6624,4/4:17632,2/2:152364,g=32"
      "random:16/16:2208,8/8:6624,4/4:26332,3/3:143664,g=32"
      "random:16/16:2208,8/8:6624,6/6:26332,5/4:143664,g=32"
      "rule:3/2,entropy>3=6/4,g=32,w=8"
    )
    ;;
  *)
    echo "scripts/results.sh: unknown model $model (stories260K or bible919K)" >&2
    exit 2
    ;;
esac

mkdir -p "$out"
arguments=()
for policy in "${policies[@]}"; do arguments+=(--policy "$policy"); done
"$eval_binary" --model "$shared/models/$model.gguf" --text "$text" --mc "$items" \
  --write-mc-items "$out/mc_items.txt" --budgets "$budgets" --json "$out/results.json" \
  --csv "$out/results.csv" --plot "$out/pareto.svg" "${arguments[@]}" | tee "$out/results.md"
