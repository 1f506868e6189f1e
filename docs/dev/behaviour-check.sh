#!/bin/bash
# A fixed small benchmark (two experiments, MDF and the authors' weights among the losses) and a
# fixed sensitivity run, for comparing the files two versions of the code write.
#   PY=python-of-version-A docs/dev/behaviour-check.sh OUT_A
#   PY=python-of-version-B docs/dev/behaviour-check.sh OUT_B
#   docs/dev/behaviour-check.sh --compare OUT_A OUT_B     # results.csv / sensitivity.csv, common columns
set -euo pipefail
SHARED=${SHARED:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
if [ "${1:-}" = "--compare" ]; then
  for f in bench/results.csv bench-sr/results.csv bench/denoise-dncnn/input_results.csv sens/sensitivity.csv; do
    python3 - "$2/$f" "$3/$f" <<'PYTHON'
import csv, sys
a, b = (list(csv.DictReader(open(p, newline=""))) for p in sys.argv[1:])
common = [c for c in a[0] if c in b[0]]
same = [[r[c] for c in common] for r in a] == [[r[c] for c in common] for r in b]
print(("IDENTICAL" if same else "DIFFERENT"), sys.argv[1].split("/", 1)[-1], f"({len(a)} rows, columns {', '.join(common)})")
PYTHON
  done
  exit 0
fi
PY=${PY:-python}
OUT=$1
rm -rf "$OUT"; mkdir -p "$OUT"
export OMP_NUM_THREADS=1
$PY -m mdfloss.cli bench --preset cpu-mini --task denoise --train-dir "$SHARED/data/photos/train" \
  --test-dir "$SHARED/data/photos/val" --official-dir "$SHARED/anchors/mdf-official" --iters 12 \
  --set train.val_every=6 --set train.checkpoint_every=6 --set data.test_limit=2 \
  --losses l2,ssim,msssim+l1,mdf,mdf-official --no-progress --out "$OUT/bench" > "$OUT/bench.log" 2>&1
$PY -m mdfloss.cli bench --preset cpu-mini --task sisr --train-dir "$SHARED/data/photos/train" \
  --test-dir "$SHARED/data/photos/val" --iters 6 --set train.val_every=3 --set data.test_limit=2 \
  --losses l1,mdf --no-progress --out "$OUT/bench-sr" > "$OUT/bench-sr.log" 2>&1
$PY -m mdfloss.cli analyze sensitivity --loss denoise --loss msssim --loss "$SHARED/anchors/mdf-official/Ds_JPEG.pth" \
  --images "$SHARED/data/photos/val" --max-images 2 --size 96 --levels 25,30 --per-scale --threads 1 \
  --out "$OUT/sens" > "$OUT/sens.log" 2>&1
echo "wrote $OUT"
