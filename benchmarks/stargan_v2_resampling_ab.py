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
import copy
import importlib.util
import statistics
import time
from pathlib import Path

import torch


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
    from ganzoo.recipe import recipe_from_dict
    from ganzoo.trainer import Trainer, update_ema

    overhead = load_cpu_overhead()
    doc = overhead.RECIPES["stargan_v2"](argparse.Namespace(img_size=args.img_size, batch=args.batch))
    trainer = Trainer(recipe_from_dict(doc), "/nonexistent-unused", quiet=True)
    trainer._setup()
    model = trainer.model
    batch = next(iter(trainer._loader()))
    nets = {r: copy.deepcopy(n) for r, n in model.nets.items()}
    ema = {r: copy.deepcopy(n) for r, n in model.ema_nets.items()}
    overhead.use_official_block_forwards(nets)
    overhead.use_official_block_forwards(ema)
    adam = dict(betas=tuple(model.optim.betas), weight_decay=model.optim.weight_decay)
    opts = {r: torch.optim.Adam(n.parameters(), lr=model.learning_rate(r), **adam) for r, n in nets.items()}
    losses = model.losses
    lambdas = {"r1": losses.r1, "sty": losses.sty, "ds": losses.ds, "cyc": losses.cyc}

    shipped = (resampling.POOLED_CONV_MIN_PIXELS, resampling.UPSAMPLED_CONV_MIN_PIXELS)
    never = 1 << 62

    def ours(pooled: int, upsampled: int):
        def iteration():
            resampling.POOLED_CONV_MIN_PIXELS, resampling.UPSAMPLED_CONV_MIN_PIXELS = pooled, upsampled
            model.train_step(batch, trainer.step, trainer.ctx)
            trainer._step_schedulers()
            for role, e in model.ema_nets.items():
                update_ema(e, model.nets[role], trainer.cfg.ema)
            trainer.step += 1

        return iteration

    variants = {
        "both": ours(*shipped),
        "downsampling only": ours(shipped[0], never),
        "neither": ours(never, never),
        "plain official loop": lambda: overhead.plain_official_step(nets, opts, ema, batch, model.latent_dim, lambdas),
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
