"""``ganzoo compare``: several model families on the same data, step budget and evaluation.

Each family is trained (or loaded, with ``--models``) on the same image folder and split,
with the same number of steps, then evaluated by :func:`ganzoo.metrics.evaluate.evaluate` with
one shared set of resources (feature net, real features, LPIPS, classifier), so every number
in the table is measured the same way. What to train comes from each family's model class:
its "small" recipe (``recipes={"small": ...}``), and whether it is ``pairwise`` (one model per
pair of domains: k(k-1)/2 models, k(k-1) generators, all trained and counted) or ``paired``
(it needs aligned pairs, so it is compared only as a trained model, ``--models``).

Training runs are separate ``ganzoo run`` processes: a crash in one cannot take the others
down, and each one's peak memory is its own (CPU: the process's max RSS; CUDA: the
trainer's ``torch.cuda.max_memory_allocated``). A finished run found in the output folder is
reused, so an interrupted compare continues where it stopped.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError


@dataclass
class Entry:
    """One family in the comparison: its models (or runs to train) and what was measured."""

    name: str
    run_dirs: list[Path] = field(default_factory=list)
    model_paths: list[str] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)


def parse_models(values: list[str], families: list[str]) -> dict[str, list[str]]:
    """``--models`` values: ``NAME=PATH[,PATH...]`` or a bare path (its family read from config.json)."""
    given: dict[str, list[str]] = {}
    for value in values:
        if "=" in value.split("/")[0]:
            name, _, paths = value.partition("=")
            if name not in families:
                raise GanzooError(f'--models {value}: "{name}" is not one of the compared models ({", ".join(families)}).')
            given.setdefault(name, []).extend(p for p in paths.split(",") if p)
        else:
            import ganzoo

            name = ganzoo.load(value).name
            if name not in families:
                raise GanzooError(f"--models {value} holds a {name} model, which is not among the compared models "
                                  f"({', '.join(families)}); add {name} to the list.")
            given.setdefault(name, []).append(value)
    return given


#: The built-in set ``compare`` uses when no --data is given: the shapes set's domains, per-domain image counts.
BUILTIN_TRAIN, BUILTIN_VAL = 200, 50
CACHE_ENV = "GANZOO_CACHE"  # where ganzoo keeps data it writes for you (default: ~/.cache/ganzoo)


def cache_root() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "ganzoo"


def builtin_shapes(image_size: int = 32) -> tuple[Path, bool]:
    """The built-in shapes set as an image folder in the cache, written on first use; (folder, written now)."""
    import shutil
    import tempfile

    from ganzoo.data.shapes import export_folder

    folder = cache_root() / f"shapes-{image_size}px-{BUILTIN_TRAIN}x{BUILTIN_VAL}-seed0"
    if (folder / ".complete").is_file():
        return folder, False
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    except OSError as exc:
        raise GanzooError(f"Cannot write the built-in shapes set under {folder.parent} ({exc.strerror}); "
                          f"set {CACHE_ENV} to a writable folder or pass --data DIR.") from None
    try:
        export_folder(work, image_size=image_size, num_train=BUILTIN_TRAIN, num_val=BUILTIN_VAL, seed=0)
        (work / ".complete").write_text("written by ganzoo compare\n")
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete earlier attempt
        os.replace(work, folder)  # the cache holds a complete set or none
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder, True


def _recipe_for(model_cls, name: str, data_root: Path, domains: list[str], steps: int | None, recipe_path: str | None,
                image_size: int | None, device: str):
    """The family's small recipe (or ``--recipe``) on the compared data, with the compare's steps and device."""
    from ganzoo.recipe import load_recipe, recipe_from_dict

    if recipe_path is None:
        recipe_path = model_cls.recipes.get("small")
        if recipe_path is None:
            raise GanzooError(f'{name} declares no small recipe to compare from; give one with --recipe {name}=RECIPE.yaml.')
    recipe = load_recipe(recipe_path)
    doc = recipe.model_dump(mode="json")
    doc["data"] = {"name": "imagefolder", "root": str(data_root), "domains": domains,
                   "image_size": image_size or recipe.data.image_size, "batch_size": recipe.data.batch_size}
    steps = steps or recipe.train.steps
    # Uncompiled: every family alike, and compiling pays only over runs longer than a compare's usual budget.
    doc["train"].update(steps=steps, checkpoint_every=steps, sample_every=0, device=device, compile=False)
    if doc["optim"].get("decay_start") is not None:  # the preset's decay point, scaled to the new budget
        doc["optim"]["decay_start"] = int(doc["optim"]["decay_start"] * steps / max(1, recipe.train.steps))
    return recipe_from_dict(doc, source=f"{recipe_path} (compare)")


def _finished(run_dir: Path, steps: int) -> bool:
    latest = run_dir / "latest.json"
    try:
        return json.loads(latest.read_text())["step"] >= steps
    except (OSError, ValueError, KeyError, TypeError):
        return False


def train_run(recipe, run_dir: Path, console, quiet: bool) -> dict[str, Any]:
    """Train ``recipe`` in a ``ganzoo run`` subprocess; return its speed and peak memory."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    recipe_file = run_dir.parent / f"{run_dir.name}.yaml"
    recipe_file.write_text(recipe.to_yaml())
    steps, batch = recipe.train.steps, recipe.data.batch_size
    if _finished(run_dir, steps):
        console.print(f"  reusing the finished run {run_dir}", highlight=False)
        previous = run_dir / "compare-train.json"
        return json.loads(previous.read_text()) if previous.is_file() else {"reused": True}
    # A run stopped before (even before its first checkpoint) is continued: --out refuses a folder that holds files.
    resume = ["--resume", str(run_dir)] if (run_dir / "recipe.yaml").is_file() else ["--out", str(run_dir)]
    cmd = [sys.executable, "-m", "ganzoo", "run", str(recipe_file), *resume] + (["-q"] if quiet else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise GanzooError(f"Training {run_dir.name} failed (exit code {proc.returncode}, its message is above); "
                          f"fix it and re-run the same compare command: finished runs are kept.")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last = next((r for r in reversed(records) if "it_per_s" in r), {})  # the last loss row (eval rows have none)
    cuda_peak = max((r.get("peak_mem_mb", 0) for r in records), default=0)
    result = {
        "steps": steps, "batch_size": batch, "seconds": round(seconds, 1),
        "train_img_per_s": round(last.get("it_per_s", 0) * batch, 2),
        "peak_mem_mb": round(cuda_peak if cuda_peak else usage.ru_maxrss / 1024.0, 1),
        "peak_mem_kind": "torch.cuda.max_memory_allocated" if cuda_peak else "max RSS of the training process",
    }
    (run_dir / "compare-train.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_compare(families: list[str], data_root: str | Path, out: str | Path, *, steps: int | None = None,
                models: list[str] | None = None, recipes: dict[str, str] | None = None, image_size: int | None = None,
                options=None, metrics: list[str] | None = None, train_classifier_if_missing: bool = True,
                rows_per_domain: int = 2, console=None, quiet: bool = False) -> dict[str, Any]:
    from rich.console import Console

    from ganzoo.data.imagefolder import ImageFolderDataset
    from ganzoo.metrics.evaluate import EvalOptions, Resources, Translator, evaluate
    from ganzoo.plugins import get_registry
    from ganzoo.trainer import pick_device

    console = console or Console(stderr=True)
    options = options or EvalOptions()
    registry = get_registry()
    known = registry.names("models")
    for name in families:
        if name not in known:
            from ganzoo.errors import did_you_mean

            raise GanzooError(f'Unknown model "{name}".{did_you_mean(name, known)} Models: {", ".join(known)}.')
    if len(set(families)) != len(families):
        raise GanzooError(f"A model is named twice: {' '.join(families)}.")
    data_root = Path(data_root).expanduser().resolve()
    domains = ImageFolderDataset(str(data_root), "train", image_size=8).domains
    ImageFolderDataset(str(data_root), "val", image_size=8, domains=domains)  # the held-out split must exist too
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanzooError(f"Cannot create the output folder {out} ({exc.strerror}); choose another --out.") from None
    given = parse_models(models or [], families)
    recipes = recipes or {}
    for name in recipes:
        if name not in families:
            raise GanzooError(f'--recipe {name}=...: "{name}" is not one of the compared models ({", ".join(families)}).')
    k = len(domains)
    console.print(f"[bold]ganzoo compare[/]: {', '.join(families)} on {data_root} ({k} domains: {', '.join(domains)})",
                  highlight=False)

    # 1. train (or load) every family
    entries = []
    for name in families:
        entry = Entry(name)
        if name in given:
            entry.model_paths = given[name]
            entry.train = {"given": given[name]}
        else:
            model_cls = registry.get("models", name)
            if model_cls.paired:
                raise GanzooError(f"{name} learns from aligned (input, output) pairs, which a folder of domains does not "
                                  f"have; pass a trained {name} with --models {name}=PATH.")
            pairs = list(itertools.combinations(domains, 2)) if model_cls.pairwise else [tuple(domains)]
            runs = []
            for pair in pairs:
                recipe = _recipe_for(model_cls, name, data_root, list(pair), steps, recipes.get(name), image_size, options.device)
                run_dir = out / "runs" / (name if len(pairs) == 1 else f"{name}-{'-'.join(pair)}")
                console.print(f"[bold]train[/] {run_dir.name}: {recipe.train.steps} steps, batch {recipe.data.batch_size}, "
                              f"{recipe.data.image_size} px", highlight=False)
                runs.append(train_run(recipe, run_dir, console, quiet))
                entry.run_dirs.append(run_dir)
            entry.model_paths = [str(p) for p in entry.run_dirs]
            entry.train = _sum_runs(runs)
        entries.append(entry)

    # 2. one classifier for all (trained once, next to the data, if there is none)
    if options.classifier is None and train_classifier_if_missing and (metrics is None or "domain_accuracy" in metrics):
        if not list((data_root / ".ganzoo" / "classifiers").glob("*/config.json")):
            from ganzoo.metrics.classifier import train_classifier

            console.print("[bold]train-classifier[/]: no domain classifier next to the data yet; training one", highlight=False)
            clf = train_classifier(data_root, device=options.device)
            console.print(f"  held-out accuracy {clf.val_accuracy:.3f} ({clf.folder})", highlight=False)

    # 3. evaluate everything the same way
    resources = Resources(options, pick_device(options.device))
    translators = {}
    import ganzoo

    for entry in entries:
        loaded = [ganzoo.load(p, device="cpu") for p in entry.model_paths]
        translator = Translator(loaded, name=entry.name)
        missing = [d for d in translator.domains if d not in domains]
        if missing:
            raise GanzooError(f'{entry.name}: the model knows domain "{missing[0]}", which {data_root} lacks.')
        console.print(f"[bold]eval[/] {entry.name}: {len(translator.tasks)} tasks, modes {', '.join(translator.modes)}",
                      highlight=False)
        result = evaluate(translator, data_root, metrics, options, resources=resources)
        entry.eval = result.to_json()
        translators[entry.name] = translator

    # 4. the picture and the reports
    report = {
        "data": str(data_root), "domains": domains, "k": k, "steps": steps,
        "options": {k2: v for k2, v in vars(options).items()},
        "models": {e.name: {"generators": translators[e.name].generator_count(), "models": len(e.model_paths),
                            "paths": e.model_paths, "train": e.train, "eval": e.eval} for e in entries},
    }
    picture = compare_picture(translators, data_root, domains, rows_per_domain, options.seed)
    picture.save(out / "compare.png")
    report["picture"] = "compare.png"
    (out / "compare.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "compare.md").write_text(markdown(report))
    return report


def _sum_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One family's training cost over its runs (a pairwise family: one run per pair)."""
    if len(runs) == 1:
        return runs[0]
    seconds = sum(r.get("seconds", 0) for r in runs)
    images = sum(r.get("steps", 0) * r.get("batch_size", 0) for r in runs)
    train_img = sum(r.get("train_img_per_s", 0) for r in runs) / len(runs)
    return {"runs": runs, "seconds": round(seconds, 1), "train_img_per_s": round(train_img, 2),
            "images_seen": images, "peak_mem_mb": max(r.get("peak_mem_mb", 0) for r in runs),
            "peak_mem_kind": runs[0].get("peak_mem_kind")}


def compare_picture(translators: dict[str, Any], data_root: Path, domains: list[str], rows_per_domain: int, seed: int):
    """Rows: held-out inputs (the first ``rows_per_domain`` val images of each domain); columns: the input,
    then each model's translation into each other domain (first generation mode; blank on the diagonal)."""
    import torch

    from ganzoo.data.imagefolder import ImageFolderDataset
    from ganzoo.sheets import Sheet

    first = next(iter(translators.values()))
    val = ImageFolderDataset(str(data_root), "val", image_size=first.image_size, domains=domains)
    groups = val.indices_by_label()
    rows, labels = [], []
    for d, name in enumerate(domains):
        for i in groups[d][:rows_per_domain]:
            rows.append((name, val.load(i)))
            labels.append(f"{name} #{groups[d].index(i)}")
    cells = [[image] for _, image in rows]
    column_labels, column_groups = ["input"], [""]
    for model_name, translator in translators.items():
        mode = next(iter(translator.modes))
        for target in domains:
            column_labels.append(target)
            column_groups.append(model_name)
            for r, (source, image) in enumerate(rows):
                if source == target or (source, target) not in translator.routes:
                    cells[r].append(None)
                    continue
                gen = torch.Generator().manual_seed(seed)
                refs = None
                if mode == "reference":
                    refs = val.load(groups[domains.index(target)][0])[None]
                out = translator.generate(image[None], source, target, mode, references=refs, generator=gen)
                if out.shape[-1] != image.shape[-1]:
                    out = torch.nn.functional.interpolate(out, size=image.shape[-2:], mode="bilinear", antialias=True)
                cells[r].append(out[0])
    scale = max(1, -(-64 // first.image_size))  # small images drawn at least 64 px wide (nearest: no blur)
    if scale > 1:
        cells = [[None if c is None else c.repeat_interleave(scale, -1).repeat_interleave(scale, -2) for c in row]
                 for row in cells]
    return Sheet("compare", cells, labels, column_labels, column_groups=column_groups,
                 info={"data": str(data_root), "models": list(translators), "seed": seed})


# --------------------------------------------------------------------------- reports

#: (label, how to read one model's value from the report, format)
ROWS = [
    ("generators for k domains", lambda m: m["generators"], "{:d}"),
    ("models trained", lambda m: m["models"], "{:d}"),
    ("parameters (inference, all pairs)", lambda m: m["eval"]["metrics"].get("params", {}).get("values", {}).get("params/inference"), "{:,.0f}"),
    ("parameters (training)", lambda m: m["eval"]["metrics"].get("params", {}).get("values", {}).get("params/training"), "{:,.0f}"),
    ("training img/s", lambda m: m["train"].get("train_img_per_s"), "{:.1f}"),
    ("training time (s)", lambda m: m["train"].get("seconds"), "{:.0f}"),
    ("peak memory (MiB)", lambda m: m["train"].get("peak_mem_mb"), "{:.0f}"),
]
PER_MODE = [("inference img/s", "throughput", "throughput/{mode}", "{:.1f}"),
            ("GFLOPs / image", "flops", "flops/{mode}", "{:.3f}"),
            ("FID", "fid", "fid/{mode}", "{:.2f}"),
            ("KID", "kid", "kid/{mode}", "{:.4f}"),
            ("LPIPS diversity", "lpips", "lpips/{mode}", "{:.4f}"),
            ("domain accuracy", "domain_accuracy", "domain_accuracy/{mode}", "{:.3f}"),
            ("content preservation", "content", "content/{mode}", "{:.3f}")]


def table_rows(report: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(row label, one cell per model) for the terminal table and compare.md."""
    models = report["models"]
    rows = []
    for label, read, fmt in ROWS:
        cells = []
        for m in models.values():
            try:
                value = read(m)
            except (KeyError, TypeError):
                value = None
            cells.append("—" if value is None else fmt.format(value))
        rows.append((label, cells))
    for label, metric, key, fmt in PER_MODE:
        cells = []
        for m in models.values():
            entry = m["eval"]["metrics"].get(metric, {})
            if "n/a" in entry:
                cells.append("n/a")
                continue
            values = entry.get("values", {})
            parts = []
            for mode in m["eval"]["modes"]:
                value = values.get(key.format(mode=mode))
                if value is not None:
                    text = fmt.format(value / 1e9 if metric == "flops" else value)
                    parts.append(text if len(m["eval"]["modes"]) == 1 else f"{text} ({mode})")
            cells.append(", ".join(parts) or "—")
        rows.append((label, cells))
    return rows


def notes(report: dict[str, Any]) -> list[str]:
    """Why a metric is n/a, and the protocol stamps (once per distinct stamp)."""
    lines, seen = [], set()
    for name, m in report["models"].items():
        for metric, entry in m["eval"]["metrics"].items():
            if "n/a" in entry:
                line = f"{metric} n/a for {name}: {entry['n/a']}"
            else:
                stamp = {k: v for k, v in entry.get("protocol", {}).items() if k != "n_fake_per_task"}
                if not stamp:
                    continue
                line = f"{metric}: " + "; ".join(f"{k} = {v}" for k, v in stamp.items())
            if line not in seen:
                seen.add(line)
                lines.append(line)
    return lines


def markdown(report: dict[str, Any]) -> str:
    names = list(report["models"])
    out = [f"# ganzoo compare: {' vs '.join(names)}", "",
           f"Data: `{report['data']}`, {report['k']} domains ({', '.join(report['domains'])}); "
           f"steps per model: {report['steps'] or 'each recipe’s own'}.", "",
           "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, cells in table_rows(report):
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += ["", f"![compare]({report.get('picture', 'compare.png')})", "", "## Protocol", ""]
    out += [f"- {line}" for line in notes(report)]
    return "\n".join(out) + "\n"


def print_report(report: dict[str, Any], console) -> None:
    from rich.table import Table

    table = Table(title=f"ganzoo compare on {report['k']} domains ({', '.join(report['domains'])})")
    table.add_column("")
    for name in report["models"]:
        table.add_column(name, justify="right")
    for label, cells in table_rows(report):
        table.add_row(label, *cells)
    console.print(table)
    for line in notes(report):
        console.print(f"[dim]- {line}[/]", highlight=False)
