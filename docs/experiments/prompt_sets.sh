#!/usr/bin/env bash
# Alignment on the three shipped prompt sets (heldin, heldout, paraphrase), 256 prompts each, one image
# per prompt, 4 steps: the protocol of docs/models.md. Prints one JSON object per set, with per-family
# alignment. Usage: bash docs/experiments/prompt_sets.sh MODEL OUTDIR [generate flags...]
#   bash docs/experiments/prompt_sets.sh synthfaces-prox-grpo outputs/sets-grpo
#   bash docs/experiments/prompt_sets.sh synthfaces-score outputs/sets-score --sampler ddim
set -euo pipefail
model=$1; out=$2; shift 2
for set in heldin heldout paraphrase; do
  proxt2i data prompts "$set" > "$out.$set.txt" 2>/dev/null || { mkdir -p "$(dirname "$out")"; proxt2i data prompts "$set" > "$out.$set.txt"; }
  proxt2i generate --prompts "$out.$set.txt" --num 1 --steps 4 --seed 0 --model "$model" --out "$out/$set" --overwrite "$@" >/dev/null
  proxt2i evaluate "$out/$set" --json | python -c "import json,sys; r=json.load(sys.stdin); r['set']='$set'; r['model']='$model'; print(json.dumps(r))"
done
