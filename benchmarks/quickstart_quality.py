"""Judge a quickstart model by eye's proxy: colour right, silhouette kept.

For every held-out shapes image and every *other* colour family, translate
with a random latent style and check
  * colour: the dominant hue inside the output's object is the target family;
  * silhouette: IoU between the output's foreground (segmented by saturation)
    and the source object's true mask.

Two judges, reported side by side:
  * ours (the top-level keys): held-out items of the training generator
    (ganzoo/data/shapes.py) at the model's size;
  * ``second_judge`` (benchmarks/judge_shapes2.py): objects drawn by an
    independent renderer (other shapes, textures and a noisier background) at
    64 px, resized to the model's size and back as ``ganzoo translate
    --keep-size`` does, with the mean IoU per shape kind.

    python benchmarks/quickstart_quality.py RUN_DIR_OR_MODEL [--num-val 150] [--json out.json] [--skip-second-judge]

Targets (issue 20): ours colour accuracy >= 0.95 and mean IoU >= 0.85; second
judge colour accuracy >= 0.95 and mean IoU >= 0.75. The exit status is 0 when
all are met (with --skip-second-judge: ours only), else 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch


def evaluate(model_path: str, num_val: int = 150, seed: int = 0) -> dict:
    import ganzoo
    from ganzoo.data.shapes import ShapesDataset, colour_family_of, foreground_mask

    model = ganzoo.load(model_path)
    data = model.recipe.data
    val = ShapesDataset(split="val", image_size=data.image_size, domains=model.domains,
                        num_val=max(num_val, 1), seed=getattr(data, "seed", 0) if hasattr(data, "seed") else 0)
    n = min(num_val, len(val))
    images = torch.stack([val.load(i) for i in range(n)])
    masks = torch.stack([val.mask(i) for i in range(n)])
    labels = torch.tensor(val.labels[:n])
    gen = torch.Generator().manual_seed(seed)
    correct = total = 0
    ious = []
    for d, family in enumerate(model.domains):
        keep = labels != d
        if not keep.any():
            continue
        x, m = images[keep], masks[keep]
        out = model.translate(x, torch.full((x.shape[0],), d), generator=gen)
        for img, mask in zip(out, m):
            total += 1
            correct += colour_family_of(img, mask, model.domains) == family
            fg = foreground_mask(img)
            inter = (fg & mask).sum().item()
            union = (fg | mask).sum().item()
            ious.append(inter / max(union, 1))
    return {
        "colour_accuracy": correct / max(total, 1),
        "mean_iou": sum(ious) / max(len(ious), 1),
        "iou_at_least_0.8": sum(i >= 0.8 for i in ious) / max(len(ious), 1),
        "translations": total,
        "model": model_path,
        "step": getattr(model, "step", None),
    }


def write_grid(model_path: str, path: str, rows: int, seed: int) -> None:
    """Held-out sources (rows) translated into every colour family (columns), with a random style each."""
    import ganzoo
    from ganzoo.data.shapes import ShapesDataset
    from ganzoo.image_output import save_image

    model = ganzoo.load(model_path)
    val = ShapesDataset(split="val", image_size=model.image_size, domains=model.domains, num_val=max(rows, 1))
    images = torch.stack([val.load(i) for i in range(rows)])
    labels = torch.tensor(val.labels[:rows])
    save_image(model.sample_grid(images, labels, seed=seed), path)


TARGETS = {"colour_accuracy": 0.95, "mean_iou": 0.85}
SECOND_JUDGE_TARGETS = {"colour_accuracy": 0.95, "mean_iou": 0.75}


def second_judge():
    """benchmarks/judge_shapes2.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("judge_shapes2", Path(__file__).with_name("judge_shapes2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meets(result: dict, targets: dict) -> bool:
    return all(result[key] >= low for key, low in targets.items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--num-val", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    parser.add_argument("--grid", help="also write a labelled grid of held-out translations (PNG) here")
    parser.add_argument("--grid-rows", type=int, default=6)
    parser.add_argument("--skip-second-judge", action="store_true", help="only our held-out shapes judge")
    args = parser.parse_args(argv)
    result = evaluate(args.model, args.num_val, args.seed)
    if not args.skip_second_judge:
        second = second_judge().evaluate(args.model, num=args.num_val, seed=args.seed)
        result["second_judge"] = {k: v for k, v in second.items() if k not in ("model", "step")}
    if args.grid:
        write_grid(args.model, args.grid, args.grid_rows, args.seed)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    ok = meets(result, TARGETS) and (args.skip_second_judge or meets(result["second_judge"], SECOND_JUDGE_TARGETS))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
