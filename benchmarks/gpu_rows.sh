#!/usr/bin/env bash
# The README's GPU rows (issue 7's targets) in one batch, for a machine with one CUDA GPU:
#   StarGAN v2 256 px batch 8, CycleGAN 256 px batch 1 and 8, StarGAN v1 128 px batch 16,
#   each as fp32 eager (the baseline), bf16 eager, bf16 compiled and bf16 compiled + channels_last.
#
#   benchmarks/gpu_rows.sh OUTDIR            one JSON per row in OUTDIR, then the table on stdout
#   SMOKE=1 DEVICE=cpu benchmarks/gpu_rows.sh OUTDIR   a check of the script itself (64 px, batch 2, 1 step, eager rows)
#
# Environment: GANZOO (the command, default `ganzoo`), DEVICE (default cuda), STEPS / WARMUP (default 20 / 5).
# On a GPU machine without network but with PyTorch (the lent H100/H200 image), install ganzoo from wheels
# downloaded beforehand on a networked machine (the image lacks pydantic and hatchling):
#   pip download pydantic hatchling --only-binary :all: --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform any -d .gpu-wheels
#   python3 -m pip install --no-index --find-links .gpu-wheels pydantic hatchling
#   python3 -m pip install --no-deps --no-build-isolation --no-index -e .   # one package: core + built-in plugins
set -uo pipefail
out=${1:?usage: benchmarks/gpu_rows.sh OUTDIR}
mkdir -p "$out"
ganzoo=${GANZOO:-ganzoo}
device=${DEVICE:-cuda}
steps=${STEPS:-20}
warmup=${WARMUP:-5}
if [[ -n "${SMOKE:-}" ]]; then steps=1; warmup=0; fi

failed=0
bench() {  # bench NAME MODEL SIZE BATCH PRECISION [extra flags...]
    local name=$1 model=$2 size=$3 batch=$4 precision=$5
    shift 5
    if [[ -n "${SMOKE:-}" ]]; then size=64; batch=2; fi
    echo "== $name" >&2
    if ! $ganzoo bench "$model" --img-size "$size" --batch "$batch" --precision "$precision" --device "$device" \
            --steps "$steps" --warmup "$warmup" --json "$out/$name.json" "$@" >"$out/$name.txt" 2>&1; then
        echo "FAILED: $name (see $out/$name.txt)" >&2
        failed=1
    fi
}

rows() {  # rows PREFIX MODEL SIZE BATCH
    bench "$1-fp32-eager" "$2" "$3" "$4" fp32
    bench "$1-bf16-eager" "$2" "$3" "$4" bf16
    [[ -n "${SMOKE:-}" ]] && return  # compiling takes minutes on a CPU
    bench "$1-bf16-compile" "$2" "$3" "$4" bf16 --compile
    bench "$1-bf16-compile-cl" "$2" "$3" "$4" bf16 --compile --set train.channels_last=true
}

rows stargan_v2-256-b8 stargan_v2 256 8
rows cyclegan-256-b1 cyclegan 256 1
rows cyclegan-256-b8 cyclegan 256 8
rows stargan-128-b16 stargan 128 16
python3 "$(dirname "$0")/bench_table.py" "$out"/*.json
exit $failed
