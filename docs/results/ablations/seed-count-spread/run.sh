#!/bin/bash
# Issue 10: how much do the seed-count results move with phase 1's random seed alone? seeds-1 (Aqua.png) retrained with --rng-seed 1 and 2, benchmarked on the same 1000-iteration protocol.
# run from the repository root
export OMP_NUM_THREADS=1
OUT=docs/results/ablations/seed-count-spread
mkdir -p $OUT
for r in 1 2; do
  mdfloss train --task denoise --seed ../shared/data/photos/train/Aqua.png --out $OUT/seeds-1-rng$r.safetensors --rng-seed $r --threads 1 --quiet --resume &
done
wait
mdfloss bench --preset cpu --task denoise --losses mdf:$OUT/seeds-1-rng1.safetensors,mdf:$OUT/seeds-1-rng2.safetensors \
  --train-dir ../shared/data/photos/train --val-dir ../shared/data/photos/val --test-dir data/test-detail \
  --set train.iters=1000 --jobs 2 --no-progress --out $OUT
echo "spread exit $? at $(date)"
