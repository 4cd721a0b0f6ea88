"""StarGAN v2's resampling convolutions, the strided way or the official way: one iteration each, alternated.

On a CPU, plugins/ganzoo_stargan_v2/resampling.py computes a downsampling block's conv3x3-then-pool as one stride-2
convolution and the decoder's upsample-then-conv3x3 as one stride-2 transposed convolution, each from a threshold of
pixels per batch. This script times the trainer's iteration (as benchmarks/cpu_overhead.py builds it: official
widths) with both, with the downsampling alone and with neither (thresholds set out of reach), and the plain official
loop of cpu_overhead.py (its blocks in the official order), alternated in one process, and prints the medians and
their ratios.

    python benchmarks/stargan_v2_resampling_ab.py [--img-size 64] [--batch 2] [--rounds 6]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path



def load_cpu_overhead():
    spec = importlib.util.spec_from_file_location("cpu_overhead", Path(__file__).with_name("cpu_overhead.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)

    import ganzoo_stargan_v2.resampling as resampling

    overhead = load_cpu_overhead()
    trainer, model, batch, nets, ema = overhead.setup(argparse.Namespace(model="stargan_v2", img_size=args.img_size,
                                                                        batch=args.batch))
    iteration = overhead.trainer_iteration(trainer, batch)
    shipped = (resampling.POOLED_CONV_MIN_PIXELS, resampling.UPSAMPLED_CONV_MIN_PIXELS)
    never = 1 << 62

    def ours(pooled: int, upsampled: int):
        def run():
            resampling.POOLED_CONV_MIN_PIXELS, resampling.UPSAMPLED_CONV_MIN_PIXELS = pooled, upsampled
            iteration()

        return run

    variants = {
        "both": ours(*shipped),
        "downsampling only": ours(shipped[0], never),
        "neither": ours(never, never),
        "plain official loop": overhead.plain_stargan_v2(model, batch, nets, ema),
    }
    try:
        for fn in variants.values():  # warm-up
            fn()
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, fn in variants.items():
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
    finally:
        resampling.POOLED_CONV_MIN_PIXELS, resampling.UPSAMPLED_CONV_MIN_PIXELS = shipped
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{name:20s} median {medians[name]:.3f} s  ({' '.join(f'{x:.2f}' for x in t)})")
    for a, b in (("both", "downsampling only"), ("downsampling only", "neither"), ("both", "neither"),
                 ("both", "plain official loop"), ("neither", "plain official loop")):
        print(f"{a} / {b}: {medians[a] / medians[b]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
