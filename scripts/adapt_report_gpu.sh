#!/usr/bin/env bash
# The adaptation measurement on a GPU: the same script with --device cuda (fine-tuning
# defaults for CUDA: batch 16, bf16 where supported, validation on every held-out clip).
#
#   scripts/adapt_report_gpu.sh [MINUTES] [OUT] [extra adapt_report.py options...]
#   scripts/adapt_report_gpu.sh 20 runs/adapt-gpu --subset-minutes 10
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
shared="${HIFIGAN_SHARED:-$here/../../shared}"
minutes="${1:-20}"
out="${2:-runs/adapt-gpu-${minutes}min}"
shift $(( $# > 2 ? 2 : $# ))
exec python "$here/adapt_report.py" --device cuda --minutes "$minutes" \
    --data "$shared/data/kathleen/train.txt" --eval-list "$shared/data/kathleen/eval.txt" \
    --model universal-v1 --crepe full --out "$out" "$@"
