"""``ganzoo bench``: training and inference speed, memory, FLOPs and MFU of one model (see :mod:`ganzoo.bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ganzoo.console import err, friendly, out, registry
from ganzoo.errors import GanzooError

#: A training iteration estimated (before anything runs) or measured (the first one) to take this many seconds or
#: more is announced, with how long the rest will take.
SLOW_ITERATION_S = 20.0


class RichProgress:
    """``ganzoo bench``'s bars on stderr: one per phase (setup, warm-up, timed training, inference, FLOP count),
    and notes when an iteration will be (or was) slow."""

    def __init__(self, device: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.device = device
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TimeRemainingColumn(), console=err, transient=True)
        self.task = None

    def __enter__(self):
        self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def phase(self, name: str, total: int) -> None:
        if self.task is not None:
            self.bars.update(self.task, visible=False)
        self.task = self.bars.add_task(name, total=total)

    def advance(self) -> None:
        if self.task is not None:
            self.bars.advance(self.task)

    def first_iteration(self, seconds: float, remaining: int) -> None:
        if seconds >= SLOW_ITERATION_S:
            self.bars.console.print(
                f"[yellow]note:[/] one training iteration took {seconds:.0f} s on {self.device}; the {remaining} still to "
                f"run (plus inference) need about {seconds * remaining / 60:.0f} min. For a quicker look use --steps 1 "
                "--warmup 0, or a smaller --img-size / --batch.", highlight=False)


    def estimate(self, seconds_per_iteration: float, flops: int, flops_per_s: float, iterations: int) -> None:
        if seconds_per_iteration >= SLOW_ITERATION_S:
            self.bars.console.print(
                f"[yellow]note:[/] this configuration is about {_flops_text(flops)} per training iteration; on this CPU "
                f"(~{flops_per_s / 1e9:.0f} GFLOP/s achievable, measured) that is about {_duration(seconds_per_iteration)} "
                f"per iteration, so the {iterations} training iterations take about {_duration(seconds_per_iteration * iterations)} "
                f"(plus inference). For a quicker look use {'--steps 1 --warmup 0, or ' if iterations > 2 else ''}a "
                "smaller --img-size / --batch.", highlight=False)


def _flops_text(flops: float) -> str:
    if flops >= 1e12:
        return f"{flops / 1e12:.1f} TFLOP"
    return f"{flops / 1e9:.0f} GFLOP" if flops >= 1e10 else f"{flops / 1e9:.2f} GFLOP"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def register_commands(app) -> None:
    @app.command()
    @friendly
    def bench(
        target: str = typer.Argument(..., help="a model name (its official recipe) or a recipe YAML"),
        img_size: Optional[int] = typer.Option(None, "--img-size", help="image size (default: the recipe's)"),
        batch: Optional[int] = typer.Option(None, "--batch", help="batch size (default: the recipe's)"),
        precision: str = typer.Option("auto", "--precision", help="auto (bf16 on CUDA GPUs with native bf16, else fp32), fp32, bf16 or fp16"),
        compile_: bool = typer.Option(False, "--compile", help="torch.compile the networks"),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N"),
        steps: int = typer.Option(5, "--steps", min=1, help="timed iterations (after --warmup)"),
        warmup: int = typer.Option(1, "--warmup", min=0, help="untimed iterations first"),
        peak_tflops: Optional[float] = typer.Option(None, "--peak-tflops", help="device peak for MFU (default: table for known GPUs)"),
        set_: List[str] = typer.Option([], "--set", help="override a recipe key, e.g. --set networks.generator.dim_in=16"),
        json_path: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON here"),
    ):
        """Training and inference img/s, peak memory, FLOPs per iteration and MFU of one model (on a CPU, an estimate
        of the seconds per iteration first, made before anything runs)."""
        import json

        from ganzoo.bench import print_table, run_bench

        from ganzoo.output_paths import check_output_file, write_text_file

        registry()
        if json_path is not None:
            check_output_file(json_path, "--json")  # before the benchmark runs, not after
        if precision not in ("auto", "fp32", "bf16", "fp16"):
            raise GanzooError(f'--precision "{precision}" is not one of auto, fp32, bf16, fp16.')
        with RichProgress(device) as progress:
            result = run_bench(target, img_size=img_size, batch=batch, precision=precision, compile=compile_,
                               device=device, steps=steps, warmup=warmup, peak_tflops=peak_tflops, overrides=set_,
                               progress=progress)
        print_table(result, out)
        if json_path is not None:
            write_text_file(json_path, json.dumps(result, indent=2) + "\n", "--json")
