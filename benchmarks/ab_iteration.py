"""Interleaved A/B timing of a recipe's training iteration under recipe overrides, in one process.

    python benchmarks/ab_iteration.py RECIPE --variant base= --variant cl=train.channels_last=true \
        [--variant NAME=KEY=VALUE,KEY=VALUE ...] [--rounds 5] [--iters 10] [--warmup 3] [--threads N] [--json FILE]

Each variant is a trainer built as ``ganzoo run`` builds it (``Trainer._setup``: networks, optimisers, precision,
compile, memory format, EMA) with the same seed and one batch already in memory (converted to
channels_last too where the variant sets train.channels_last). After its own warm-up (compiling
included, timed separately and reported), the variants run ``--iters`` iterations each in turn, ``--rounds`` times
(A, B, A, B, ...), so load on the machine falls on all of them alike. Printed per variant: the median seconds per
iteration over the rounds, the warm-up seconds, and the ratio to the first variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def build(recipe_path: str, overrides: list[str], tmp: Path):
    from ganzoo.recipe import load_recipe
    from ganzoo.trainer import Trainer, update_ema

    recipe = load_recipe(recipe_path, ["train.device=cpu", "train.sample_every=0", *overrides])
    trainer = Trainer(recipe, tmp, quiet=True)
    trainer._setup()
    model, ctx = trainer.model, trainer.ctx
    batch = next(iter(trainer._loader()))
    if recipe.train.channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}

    def iteration() -> None:
        step = trainer.step
        model.current_step = step
        model.train_step(batch, step, ctx)
        trainer._step_schedulers()
        for role, net in model.ema_nets.items():
            update_ema(net, model.nets[role], recipe.train.ema)
        trainer.step += 1

    return iteration


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--variant", action="append", required=True, help="NAME=override,override (empty: the recipe)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    variants = {}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        variants[name] = [o for o in rest.split(",") if o]
    with tempfile.TemporaryDirectory(prefix="ganzoo-ab-") as tmp:
        steps, warm = {}, {}
        for i, (name, overrides) in enumerate(variants.items()):
            torch.manual_seed(0)
            steps[name] = build(args.recipe, overrides, Path(tmp) / str(i))
            if args.threads:
                torch.set_num_threads(args.threads)
            t0 = time.perf_counter()
            for _ in range(args.warmup):
                steps[name]()
            warm[name] = time.perf_counter() - t0
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, fn in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.iters):
                    fn()
                times[name].append((time.perf_counter() - t0) / args.iters)
    first = next(iter(variants))
    base = statistics.median(times[first])
    report = {"recipe": args.recipe, "threads": torch.get_num_threads(), "variants": {}}
    for name in variants:
        med = statistics.median(times[name])
        report["variants"][name] = {"overrides": variants[name], "seconds_per_iteration": med,
                                    "ratio_to_first": med / base, "warmup_seconds": warm[name],
                                    "rounds": times[name]}
        print(f"{name:>12}: {med:.4f} s/it  ratio {med / base:.3f}  warm-up {warm[name]:.1f} s  "
              f"rounds {' '.join(f'{t:.3f}' for t in times[name])}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
