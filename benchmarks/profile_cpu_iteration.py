"""Where one training iteration of a recipe spends its time on this CPU, and how close it gets to the CPU's peak.

    python benchmarks/profile_cpu_iteration.py [RECIPE] [--iters 10] [--warmup 3] [--threads N] [--json FILE]

RECIPE defaults to recipes/quickstart.yaml. The iteration is the trainer's own (``Trainer._setup`` as ``ganzoo run``
builds it: networks, optimisers, precision, EMA) on one batch already in memory, as ``ganzoo bench`` times it; data
loading is timed on its own (``next()`` on the run's loader). Reported:

- seconds per iteration (median of ``--iters`` after ``--warmup``) and per loaded batch;
- FLOPs per iteration (``torch.utils.flop_counter``: matmuls and convolutions, forward and backward, the R1 double
  backward included) and the achieved GFLOP/s;
- the CPU's fp32 matmul rate measured here (a 2048^2 ``torch.mm`` on the same threads: an achievable peak, not the
  spec sheet), and the iteration's share of it: the CPU's own "MFU";
- the top operators by self CPU time (``torch.profiler``), and those grouped as convolution (forward, backward),
  normalisation (instance/batch/group norm, AdaIN's affine), elementwise, optimiser, autograd and other; and the
  convolutions by input shape.

Say which CPU it ran on (``lscpu``): the script prints the model name and whether AMX / AVX-512-BF16 are present.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

CATEGORIES = [
    ("convolution backward", ("convolution_backward", "mkldnn_convolution_backward")),
    ("convolution forward", ("convolution", "conv2d", "mkldnn_convolution", "_convolution")),
    ("normalisation", ("instance_norm", "batch_norm", "group_norm", "native_batch_norm", "layer_norm", "var_mean")),
    ("optimiser", ("_fused_adam", "adam", "Optimizer.step", "_foreach")),
    ("matmul", ("addmm", "mm", "bmm", "linear", "matmul")),
    ("elementwise", ("mul", "add", "sub", "div", "leaky_relu", "relu", "tanh", "sigmoid", "pow", "sqrt", "exp", "where",
                     "threshold_backward", "clamp", "copy_", "fill_", "zero_", "sum", "mean")),
    ("resampling", ("upsample", "avg_pool", "max_pool", "interpolate")),
]


def cpu_description() -> dict:
    flags, name = set(), "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": name, "amx": any(f.startswith("amx") for f in flags), "avx512_bf16": "avx512_bf16" in flags,
            "avx512f": "avx512f" in flags, "threads": torch.get_num_threads()}


def category(op: str) -> str:
    name = op.split("::")[-1].lower()
    for label, keys in CATEGORIES:
        if any(name == k or name.startswith(k) or k in op for k in keys):
            return label
    if "backward" in name or "autograd" in op.lower():
        return "autograd"
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", nargs="?", default="recipes/quickstart.yaml")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from torch.profiler import ProfilerActivity, profile

    from ganzoo.bench import flop_counter, matmul_flops_per_s
    from ganzoo.recipe import load_recipe
    from ganzoo.trainer import Trainer, update_ema

    recipe = load_recipe(args.recipe, ["train.device=cpu", "train.sample_every=0"])
    with tempfile.TemporaryDirectory(prefix="ganzoo-profile-") as tmp:
        trainer = Trainer(recipe, Path(tmp) / "run", quiet=True)
        trainer._setup()
        if args.threads:  # the recipe's own train.threads would win otherwise
            torch.set_num_threads(args.threads)
        model, ctx = trainer.model, trainer.ctx
        loader = iter(trainer._loader())
        load_times = []
        for _ in range(args.warmup + args.iters):
            t0 = time.perf_counter()
            batch = next(loader)
            load_times.append(time.perf_counter() - t0)

        def iteration(step: int) -> None:
            model.current_step = step
            model.train_step(batch, step, ctx)
            trainer._step_schedulers()
            for role, net in model.ema_nets.items():
                update_ema(net, model.nets[role], recipe.train.ema)

        for i in range(args.warmup):
            iteration(i)
        times = []
        for i in range(args.iters):
            t0 = time.perf_counter()
            iteration(args.warmup + i)
            times.append(time.perf_counter() - t0)
        with flop_counter() as counter:
            iteration(args.warmup + args.iters)
        flops = counter.get_total_flops()
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for i in range(args.iters):
                iteration(args.warmup + args.iters + 1 + i)

    seconds = statistics.median(times)
    peak = matmul_flops_per_s(n=2048, repeats=5, budget_s=float("inf")) / 1e9
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in events)
    by_category: dict[str, float] = {}
    for e in events:
        by_category[category(e.key)] = by_category.get(category(e.key), 0.0) + e.self_cpu_time_total
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[: args.top]
    convs = [e for e in prof.key_averages(group_by_input_shape=True)
             if e.key in ("aten::convolution", "aten::convolution_backward") and e.self_cpu_time_total + e.cpu_time_total > 0]
    convs = sorted(convs, key=lambda e: -e.cpu_time_total)[:10]

    report = {
        "recipe": args.recipe, **cpu_description(), "torch": torch.__version__,
        "seconds_per_iteration": seconds, "iterations_per_second": 1 / seconds,
        "seconds_per_loaded_batch": statistics.median(load_times[args.warmup:]),
        "gflop_per_iteration": flops / 1e9, "achieved_gflops": flops / seconds / 1e9,
        "matmul_peak_gflops": peak, "share_of_matmul_peak": flops / seconds / 1e9 / peak,
        "categories": {k: v / total_us for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
        "top_ops": [{"op": e.key, "share": e.self_cpu_time_total / total_us, "calls": e.count // args.iters}
                    for e in top],
        "convolutions_by_shape": [{"op": e.key, "input_shapes": str(e.input_shapes)[:120],
                                   "ms_per_iteration": e.cpu_time_total / 1e3 / args.iters} for e in convs],
    }
    print(f"{report['cpu']} (AMX {'yes' if report['amx'] else 'no'}, AVX-512-BF16 "
          f"{'yes' if report['avx512_bf16'] else 'no'}), {report['threads']} threads, torch {report['torch']}")
    print(f"{args.recipe}: {seconds:.3f} s/iteration ({1 / seconds:.2f} it/s), loading {report['seconds_per_loaded_batch'] * 1e3:.1f} ms/batch")
    print(f"{flops / 1e9:.2f} GFLOP/iteration -> {report['achieved_gflops']:.1f} GFLOP/s achieved; fp32 matmul here "
          f"{peak:.1f} GFLOP/s: {100 * report['share_of_matmul_peak']:.1f} % of it")
    print("\n| share of self CPU time | category |\n| --- | --- |")
    for k, v in report["categories"].items():
        print(f"| {100 * v:.1f} % | {k} |")
    print("\n| share | op | calls/iteration |\n| --- | --- | --- |")
    for row in report["top_ops"]:
        print(f"| {100 * row['share']:.1f} % | `{row['op']}` | {row['calls']} |")
    print("\n| ms/iteration | convolution | input shapes |\n| --- | --- | --- |")
    for row in report["convolutions_by_shape"]:
        print(f"| {row['ms_per_iteration']:.1f} | `{row['op']}` | {row['input_shapes']} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
