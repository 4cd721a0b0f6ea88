"""``ganzoo bench``: training and inference throughput, peak memory, FLOPs and MFU of a model.

The training iteration measured is the trainer's own (``Trainer._setup`` builds the networks,
optimisers, precision, channels_last and compile exactly as ``ganzoo run`` does; one timed
iteration = the model's ``train_step`` + schedules + EMA), on one batch already on the device,
so data loading is not part of the number. Inference is ``model.translate_to`` (EMA networks
where the model keeps them) under ``torch.no_grad``.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``, averaged over the timed training iterations
(matmuls and convolutions, forward and backward, R1's double backward included); MFU is
achieved FLOP/s over the device's peak for the precision, from :data:`PEAKS` or ``--peak-tflops``.

On a CPU, before the Trainer builds anything, one iteration is estimated (:func:`estimate_iteration`): its FLOPs
counted on the meta device, over a measured matmul rate times :data:`CPU_EFFICIENCY`, so that a configuration
taking minutes per iteration is announced before its first minute.
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError

#: Dense peak TFLOP/s by device-name fragment and precision (vendor spec sheets; SXM parts).
#: fp32 on NVIDIA GPUs counts TF32 tensor cores, which PyTorch uses for convolutions by default.
PEAKS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0},
}
#: Measured here (shared/NOTES.md): an H100's bf16 dense matmul reaches about 790 TFLOP/s.
MEASURED_NOTE = {"H100": "H100 bf16 matmul measured ~790 TFLOP/s here (spec 989)"}


def resolve_recipe(target: str, overrides: list[str], *, img_size: int | None, batch: int | None,
                   precision: str, compile: bool, device: str):
    """A recipe (a path or a shipped name), or a model name (its official recipe); benchmark settings go on top."""
    from ganzoo.plugins import get_registry
    from ganzoo.recipe import apply_overrides, load_recipe, recipe_from_dict
    from ganzoo.recipe_names import find_recipe

    sets = list(overrides)
    if img_size:
        sets.append(f"data.image_size={img_size}")
    if batch:
        sets.append(f"data.batch_size={batch}")
    sets += [f"train.precision={precision}", f"train.compile={str(bool(compile)).lower()}", f"train.device={device}",
             "train.ema=0.999", "data.num_workers=0"]
    registry = get_registry()
    names = registry.names("models")
    if target in names:  # a model: the recipe with its paper's widths, as its class declares
        cls = registry.get("models", target)
        named = cls.recipes.get("official") or cls.recipes.get("small")
        if named is None:
            return recipe_from_dict(apply_overrides({"model": target}, sets)), f"{target} defaults"
        path = find_recipe(named)
        return load_recipe(path, sets), str(path)
    try:
        path = find_recipe(target)
    except GanzooError:
        path = Path(target)
    if not path.is_file():
        raise GanzooError(f'"{target}" is neither a recipe file nor a model; models: {", ".join(names)} '
                          "(recipes by name: `ganzoo list recipes`).")
    return load_recipe(path, sets), str(path)


def _with_synthetic_data(recipe):
    """The recipe's own data when it is there; otherwise the data of the family's small recipe (built-in synthetic
    data such as ``shapes``) at the benchmarked image and batch size, and said so."""
    import inspect

    from ganzoo.plugins import get_registry
    from ganzoo.recipe import load_recipe, recipe_from_dict
    from ganzoo.recipe_names import find_recipe
    from ganzoo.data_stream import build_dataset

    try:
        build_dataset(recipe, "train")
        return recipe, recipe.data.name
    except GanzooError as exc:
        missing = str(exc)
    registry = get_registry()
    small = registry.get("models", recipe.model).recipes.get("small")
    if small is None:
        raise GanzooError(f"{missing.rstrip('.')}; and {recipe.model} declares no small recipe whose data could stand in.")
    data = load_recipe(find_recipe(small)).data.model_dump(exclude_none=True)
    b = recipe.data.batch_size
    data.update(image_size=recipe.data.image_size, batch_size=b, num_workers=0)
    accepts = inspect.signature(registry.get("datasets", data["name"])).parameters
    data.update({k: v for k, v in (("num_train", max(2 * b, 8)), ("num_val", 2)) if k in accepts})
    doc = recipe.model_dump(mode="json")
    doc["data"] = data
    return recipe_from_dict(doc), f"synthetic {data['name']} ({recipe.data.name} not found)"


def _peak(device, precision: str, given: float | None) -> tuple[float | None, str]:
    import torch

    if given:
        return given, f"--peak-tflops {given:g}"
    if device.type != "cuda":
        return None, "n/a on CPU (give --peak-tflops)"
    name = torch.cuda.get_device_name(device)
    for key, table in PEAKS.items():
        if key in name:
            note = f"; {MEASURED_NOTE[key]}" if key in MEASURED_NOTE else ""
            return table[precision], f"{key} {precision} dense spec {table[precision]:g} TFLOP/s{note}"
    return None, f"n/a ({name} not in the peak table; give --peak-tflops)"


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker: its hooks break ``torch.autograd.grad`` (R1, gradient
    penalties) on leaf inputs, and only the global total is wanted here."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def flop_counter():
    """``FlopCounterMode`` counting the total only (works through double backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    return counter


#: The share of the fp32 matmul rate a whole training iteration reaches on a CPU, for the up-front estimate:
#: README "Where a quickstart iteration goes" (benchmarks/profile_cpu_iteration.py on the 2-core AMD EPYC here, 2
#: threads: 118 of the 180 GFLOP/s a 2048^2 matmul reaches, 65 %; 83 % on 1 thread). Wider networks use the
#: cores better, so the estimate errs on the slow side there: on the same CPU, shared, 1 thread, measured/estimated
#: was 1.11 for the quickstart, 0.72 for CycleGAN at official widths (64 px, batch 1) and about 0.6 for StarGAN v2
#: at official widths (64 px, batch 2; its first iteration). A CPU oversubscribed by other processes can be slower
#: than estimated: the matmul is measured in a 0.1 s burst.
CPU_EFFICIENCY = 0.65


def matmul_flops_per_s(dtype=None, n: int = 1024, repeats: int = 4, budget_s: float = 0.1) -> float:
    """FLOP/s of a square ``torch.mm`` on the CPU threads torch uses now (the best of ``repeats`` at the largest
    side measured; about 0.1 s on 2 cores in fp32).

    The side grows from 128 by doubling, never past ``n``, while the next size's call would fit ``budget_s``: in
    fp32 that reaches 1024, while a dtype the CPU only emulates (bf16 without AVX-512-BF16 or AMX: 2.4 s for one
    1024-square call on a Zen 3 EPYC) stops at a size that still takes a few milliseconds."""
    import torch

    side = 128
    while True:
        a, b = torch.randn(side, side, dtype=dtype), torch.randn(side, side, dtype=dtype)
        torch.mm(a, b)  # the first call pays for thread start-up
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - started)
        if side * 2 > n or best * 8 > budget_s:  # doubling the side costs 8x
            return 2 * side**3 / best
        side *= 2


def _backward_only_context(device, precision: str):
    """A StepContext whose ``optimize`` back-propagates but steps nothing (so backward and R1's double backward
    are counted, and no optimiser is needed)."""
    from ganzoo.step_context import StepContext

    class BackwardOnly(StepContext):
        def optimize(self, loss, *roles: str) -> None:
            loss.backward()

    return BackwardOnly(device, precision, {}, None)


def meta_train_flops(recipe, step: int = 0) -> int:
    """FLOPs of training iteration ``step`` of ``recipe``, counted without computing anything: the model is built
    as the Trainer builds it but on PyTorch's "meta" device (shapes only, nothing allocated), and its train step runs
    on the first batch moved there. Raises whatever the family's train step raises on meta (e.g. reading a value)."""
    import torch
    from ganzoo.data_stream import build_dataset, step_batches
    from ganzoo.plugins import get_registry

    registry = get_registry()
    dataset = build_dataset(recipe, "train", registry)
    meta = torch.device("meta")
    with meta:
        model = registry.get("models", recipe.model)(recipe, dataset.domains)
        model.build(registry=registry, init=False)
    batch = next(iter(step_batches(dataset, model, recipe, start_step=0, device=meta)))
    # fp32: FlopCounterMode counts the same under autocast, and autocast has no "meta" device type
    ctx = _backward_only_context(meta, "fp32")
    with meta, flop_counter() as counter:  # tensors the step creates (noise, labels) go to meta too
        model.current_step = step
        model.train_step(batch, step, ctx)
    return counter.get_total_flops()


def estimate_iteration(recipe, step: int) -> tuple[int, float, float] | None:
    """(FLOPs, FLOP/s, seconds) of training iteration ``step`` on this CPU, before anything is built for real:
    :func:`meta_train_flops` over the measured matmul rate times :data:`CPU_EFFICIENCY`. None where the family's
    train step does not run on meta: the bench then goes on without an estimate."""
    import torch
    from ganzoo.trainer import resolve_precision

    try:
        flops = meta_train_flops(recipe, step)
    except Exception:  # noqa: BLE001 - the estimate is a courtesy; the real run reports real errors
        return None
    if recipe.train.threads:  # the threads the Trainer will set, so the rate is the run's
        torch.set_num_threads(recipe.train.threads)
    precision = resolve_precision(recipe.train.precision, torch.device("cpu"))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    rate = matmul_flops_per_s(dtype) * CPU_EFFICIENCY
    return flops, rate, flops / rate


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class BenchProgress:
    """What :func:`run_bench` reports as it goes (this base reports nothing; ``ganzoo bench`` draws rich bars).

    ``estimate`` comes first, before the model is built for real (on a CPU, where an estimate could be made);
    ``phase`` opens a phase of ``total`` iterations, ``advance`` marks one done; ``first_iteration`` gives the
    seconds the very first training iteration took and how many training iterations are still to come, so a slow
    configuration can be announced before the rest of it runs."""

    def phase(self, name: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass

    def first_iteration(self, seconds: float, remaining: int) -> None:
        pass

    def estimate(self, seconds_per_iteration: float, flops: int, flops_per_s: float, iterations: int) -> None:
        """Before anything runs (CPU only): the estimated seconds per training iteration, from ``flops`` per
        iteration at ``flops_per_s``, and how many training iterations the bench will run."""


def run_bench(target: str, *, img_size: int | None = None, batch: int | None = None, precision: str = "auto",
              compile: bool = False, device: str = "auto", steps: int = 5, warmup: int = 1,
              peak_tflops: float | None = None, overrides: list[str] | None = None,
              progress: BenchProgress | None = None) -> dict[str, Any]:
    import torch
    from ganzoo.trainer import Trainer, pick_device, update_ema

    progress = progress or BenchProgress()

    recipe, source = resolve_recipe(target, overrides or [], img_size=img_size, batch=batch,
                                    precision=precision, compile=compile, device=device)
    recipe, data_note = _with_synthetic_data(recipe)
    # On a CPU an official-width model can take minutes per iteration: say so before the trial step and warm-up.
    estimate = estimate_iteration(recipe, warmup) if pick_device(recipe.train.device).type == "cpu" else None
    if estimate is not None:
        progress.estimate(estimate[2], estimate[0], estimate[1], warmup + 2 * steps)
    rss0 = _maxrss_mb()
    with tempfile.TemporaryDirectory(prefix="ganzoo-bench-") as tmp:
        trainer = Trainer(recipe, Path(tmp) / "run", quiet=True)
        progress.phase("setup (build, trial step)", 1)
        trainer._setup()
        progress.advance()
        model, ctx, dev = trainer.model, trainer.ctx, trainer.device
        precision = trainer.precision  # auto resolved for this device
        batch_data = next(iter(trainer._loader()))
        n = next(iter(batch_data.values())).shape[0]
        ema = recipe.train.ema

        first = [True]

        def iteration(step: int) -> None:
            started = time.perf_counter()
            model.current_step = step
            model.train_step(batch_data, step, ctx)
            trainer._step_schedulers()
            for role, net in model.ema_nets.items():
                update_ema(net, model.nets[role], ema)
            if first[0]:
                first[0] = False
                _sync(dev)
                progress.first_iteration(time.perf_counter() - started, warmup + 2 * steps - 1)
            progress.advance()

        progress.phase("warm-up", warmup)
        for i in range(warmup):
            iteration(i)
        _sync(dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        progress.phase("training (timed)", steps)
        t0 = time.perf_counter()
        for i in range(steps):
            iteration(warmup + i)
        _sync(dev)
        train_s = (time.perf_counter() - t0) / steps
        peak_train = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else _maxrss_mb() - rss0

        images = batch_data.get("x", next(iter(batch_data.values())))
        target = model.sheet_targets()[-1][1]  # the last column (a paired model: its output; domain 0 is its input)
        autocast = ctx.autocast()
        progress.phase("inference", warmup + steps)
        with torch.no_grad(), autocast:
            for _ in range(warmup):
                model.translate_to(images, target)
                progress.advance()
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(steps):
                model.translate_to(images, target)
                progress.advance()
            _sync(dev)
        infer_s = (time.perf_counter() - t0) / steps

        # over the timed iterations' own step numbers: models that step G every n-th iteration average out
        progress.phase("FLOP count", steps)
        with flop_counter() as counter:
            for i in range(steps):
                iteration(warmup + i)
        train_flops = counter.get_total_flops() / steps
        with flop_counter() as counter, torch.no_grad(), ctx.autocast():
            model.translate_to(images, target)
        infer_flops = counter.get_total_flops()

    peak, peak_note = _peak(dev, precision, peak_tflops)
    achieved = train_flops / train_s / 1e12
    params = {role: sum(p.numel() for p in net.parameters()) for role, net in model.nets.items()}
    return {
        "model": recipe.model,
        "recipe": source,
        "data": data_note,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)",
        "precision": precision,
        "compile": bool(compile),
        "channels_last": bool(recipe.train.channels_last),
        "img_size": recipe.data.image_size,
        "batch": n,
        "steps": steps,
        "warmup": warmup,
        "train_s_per_iter": train_s,
        "train_img_per_s": n / train_s,
        "infer_img_per_s": images.shape[0] / infer_s,
        "peak_mem_mb": round(peak_train, 1),
        "peak_mem_kind": "torch.cuda.max_memory_allocated" if dev.type == "cuda" else "process max RSS growth since before the model was built",
        "train_flops_per_iter": int(train_flops),
        # before running: FLOPs counted on the meta device, seconds at the measured CPU rate (None: not made)
        "estimated_flops_per_iter": estimate[0] if estimate else None,
        "estimated_s_per_iter": estimate[2] if estimate else None,
        "estimate_flops_per_s": estimate[1] if estimate else None,
        "infer_flops_per_img": int(infer_flops / max(1, images.shape[0])),
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak_source": peak_note,
        "mfu": (achieved / peak) if peak else None,
        "params": params,
        "torch": torch.__version__,
    }


def _estimate_text(result: dict[str, Any]) -> str:
    if result["estimated_s_per_iter"] is None:
        return "n/a (made on a CPU only, where the family's train step runs on the meta device)"
    return (f"{1000 * result['estimated_s_per_iter']:.1f} ms/iter ({result['estimated_flops_per_iter'] / 1e9:.2f} GFLOP at "
            f"{result['estimate_flops_per_s'] / 1e9:.0f} GFLOP/s: {100 * CPU_EFFICIENCY:.0f} % of a measured {result['precision']} matmul)")


def print_table(result: dict[str, Any], console) -> None:
    from rich.table import Table

    table = Table(title=f"ganzoo bench: {result['model']} on {result['device_name']}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    mfu = f"{100 * result['mfu']:.1f}%" if result["mfu"] is not None else "n/a"
    rows = [
        ("recipe", result["recipe"]),
        ("data", result["data"]),
        ("settings", f"{result['img_size']} px, batch {result['batch']}, {result['precision']}"
                     f"{', compiled' if result['compile'] else ''}{', channels_last' if result['channels_last'] else ''}"),
        ("train img/s", f"{result['train_img_per_s']:.2f}  ({1000 * result['train_s_per_iter']:.1f} ms/iter)"),
        ("estimated before running", _estimate_text(result)),
        ("inference img/s", f"{result['infer_img_per_s']:.2f}"),
        ("peak memory", f"{result['peak_mem_mb']:.0f} MiB ({result['peak_mem_kind']})"),
        ("FLOPs / train iter", f"{result['train_flops_per_iter'] / 1e9:.2f} GFLOP"),
        ("FLOPs / image (inference)", f"{result['infer_flops_per_img'] / 1e9:.3f} GFLOP"),
        ("achieved", f"{result['achieved_tflops']:.3f} TFLOP/s"),
        ("MFU", f"{mfu} (peak: {result['peak_source']})"),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    console.print(table)
