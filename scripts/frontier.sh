#!/usr/bin/env bash
# Runs kvbits-eval over the static grid and the adaptive policies of one model, for the tables
# in docs/results.md. usage: scripts/frontier.sh MODEL [EVAL_BINARY] [extra kvbits-eval options]
# MODEL is stories260K or bible919K; the dev text is the one ../shared pairs with it.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: scripts/frontier.sh stories260K|bible919K [EVAL_BINARY] [options]}"
eval_binary="${2:-build/examples/kvbits-eval}"
shift $(( $# >= 2 ? 2 : 1 ))
shared="${KVBITS_SHARED_DIR:-../shared}"

policies=(fp32 fp16)
case "$model" in
  stories260K)
    text="$shared/data/tinystories_valid_dev.txt"
    groups=(8)
    widths=("4,2" "4,3" "5,2" "5,3" "4,4" "6,3" "5,4" "6,4" "8,3" "8,4" "6,6" "8,8")
    tiers=(
      "tiers:1=16/16,4=8/8,16=6/4,64=5/3,*=4/2,t=scale"
      "tiers:1=16/16,4=8/8,16=6/4,*=5/3,t=scale"
      "tiers:1=16/16,4=8/8,16=8/4,64=6/4,*=5/3,t=scale"
      "tiers:1=16/16,4=8/8,16=8/6,64=6/4,*=6/3,t=scale"
      "tiers:1=16/16,4=8/8,16=8/6,64=8/4,*=6/4,t=scale"
      "tiers:1=16/16,4=8/8,16=8/6,64=8/4,*=8/3,t=scale"
    )
    random=("random:4/2:0.5,6/4:0.25,8/8:0.25,t=scale")
    ;;
  bible919K)
    text="$shared/data/bible_dev.txt"
    groups=(32 64)
    widths=("2,2" "3,2" "2,3" "3,3" "4,2" "4,3" "3,4" "4,4" "5,4" "4,5" "5,5" "6,4" "6,6" "8,4" "8,8")
    tiers=(
      "tiers:1=16/16,4=8/8,16=6/6,64=4/4,*=2/2,g=32"
      "tiers:1=16/16,4=8/8,16=6/6,64=4/4,*=3/3,g=32"
      "tiers:1=16/16,4=8/8,16=6/6,64=5/5,*=4/4,g=32"
      "tiers:1=16/16,4=8/8,16=6/6,64=4/4,*=3/2,g=32"
      "tiers:1=16/16,4=8/8,16=6/6,128=4/4,*=3/3,g=32"
    )
    random=("random:2/2:0.6,4/4:0.3,8/8:0.1,g=32")
    ;;
  *)
    echo "frontier.sh: unknown model $model (stories260K or bible919K)" >&2
    exit 2
    ;;
esac

for g in "${groups[@]}"; do
  for kv in "${widths[@]}"; do
    for window in "" ",w=16" ",w=32" ",s=4,w=16"; do
      for transform in "" ",t=scale"; do
        policies+=("static:$kv,g=$g$window$transform")
      done
    done
    # A hard fp16 window: the newest tokens at 16 bits instead of 32, the rest at K/V.
    policies+=("tiers:16=16/16,*=${kv/,//},g=$g")
  done
done
policies+=("${tiers[@]}" "${random[@]}")

arguments=()
for policy in "${policies[@]}"; do arguments+=(--policy "$policy"); done
"$eval_binary" --model "$shared/models/$model.gguf" --text "$text" "${arguments[@]}" "$@"
