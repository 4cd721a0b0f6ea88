"""``ganzoo compare``: several families on the same data, steps and evaluation (see :mod:`ganzoo.compare`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ganzoo.commands.eval_options import (DATA_HELP, DeviceOption, FeatureNetOption, FidWeightsOption, LpipsWeightsOption,
                                         MetricsOption, NumRealOption, NumValOption, OutputsOption, SeedOption, eval_options,
                                         metric_names)
from ganzoo.console import err, friendly, out, registry
from ganzoo.errors import GanzooError


def register_commands(app) -> None:
    @app.command()
    @friendly
    def compare(
        models: List[str] = typer.Argument(..., help="model families, e.g. stargan cyclegan stargan_v2"),
        data: Optional[Path] = typer.Option(None, "--data", help=DATA_HELP + " (default: the built-in shapes set, "
                                            "written once to ~/.cache/ganzoo or $GANZOO_CACHE)"),
        steps: Optional[int] = typer.Option(None, "--steps", min=1, help="training steps for every model (default: each recipe's)"),
        trained: List[str] = typer.Option([], "--models", help="use trained models instead: NAME=PATH[,PATH...] or PATH (repeatable)"),
        recipe: List[str] = typer.Option([], "--recipe", help="NAME=RECIPE.yaml to train NAME from (default: the small recipe its model declares)"),
        out_dir: Path = typer.Option(Path("compare"), "--out", help="folder for runs, compare.md, compare.json, compare.png"),
        img_size: Optional[int] = typer.Option(None, "--img-size", help="image size for every model (default: each recipe's)"),
        metrics: MetricsOption = None,
        feature_net: FeatureNetOption = "fid_inception",
        fid_weights: FidWeightsOption = None,
        lpips_weights: LpipsWeightsOption = None,
        classifier: Optional[Path] = typer.Option(None, "--classifier", help="domain classifier folder (default: next to the data, trained if missing)"),
        outputs: OutputsOption = 10,
        num_val: NumValOption = None,
        num_real: NumRealOption = None,
        seed: SeedOption = 0,
        device: DeviceOption = "auto",
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no training progress bars"),
    ):
        """Train (or load) several models on the same data and steps, evaluate them identically, report side by side."""
        from ganzoo.compare import builtin_shapes, print_report, run_compare

        registry()
        if data is None:
            size = img_size or 32
            data, written = builtin_shapes(size)
            how = "written now, once" if written else "written by an earlier compare"
            err.print(f"no --data given: comparing on the built-in shapes set (red, green, blue; {size} px) in {data} "
                      f"({how}); pass --data DIR for your own images", highlight=False, soft_wrap=True)
        recipes = {}
        for item in recipe:
            name, sep, path = item.partition("=")
            if not sep or not path:
                raise GanzooError(f'--recipe "{item}" is not NAME=RECIPE.yaml.')
            recipes[name] = path
        options = eval_options(feature_net, fid_weights, lpips_weights, classifier, outputs, num_val, num_real, 32, seed, device)
        report = run_compare(list(models), data, out_dir, steps=steps, models=trained, recipes=recipes, image_size=img_size,
                             options=options, metrics=metric_names(metrics), console=err, quiet=quiet)
        print_report(report, out)
        err.print(f"[green]wrote[/] {out_dir / 'compare.md'}, {out_dir / 'compare.json'}, {out_dir / 'compare.png'}", highlight=False)
