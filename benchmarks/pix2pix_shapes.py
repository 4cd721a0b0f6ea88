"""Measure a pix2pix model on held-out shapes pairs (silhouette -> object) against trivial baselines.

Protocol: the first N items of the shapes_pairs ``val`` split (never seen in
training; same seed, size and colour family as the model's recipe), 32 px,
values in [-1, 1]. The model translates each silhouette as the official test
script does (dropout on, per-image batch-norm statistics; seed ``--seed``).
Reported, each as mean absolute error per pixel and channel in [-1, 1] units:

* ``model_l1``: the model's output vs the true rendered object;
* ``identity_l1``: the trivial baseline output = input (the silhouette itself);
* ``mean_image_l1``: output = the per-pixel mean of 1000 training targets;

plus, on the model's outputs, the share in the right colour family and the
silhouette IoU (the judges of ``quickstart_quality.py``).

    python benchmarks/pix2pix_shapes.py RUN_DIR_OR_MODEL [--num-val 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import torch


def evaluate(model_path: str, num_val: int = 200, seed: int = 0) -> dict:
    import ganzoo
    from ganzoo.data.shapes import colour_family_of, foreground_mask
    from ganzoo_cyclegan.paired_data import ShapesPairsDataset

    model = ganzoo.load(model_path)
    data = model.recipe.data
    extra = data.model_extra or {}
    common = dict(image_size=data.image_size, domains=model.domains, seed=extra.get("seed", 0))
    val = ShapesPairsDataset(split="val", num_val=max(num_val, 1), **common)
    train = ShapesPairsDataset(split="train", num_train=extra.get("num_train", 4000), **common)
    n = min(num_val, len(val))
    pairs = [val.load_pair(i) for i in range(n)]
    sources = torch.stack([p[0] for p in pairs])
    targets = torch.stack([p[1] for p in pairs])
    masks = torch.stack([val.mask(i) for i in range(n)])
    mean_image = torch.stack([train.load_pair(i)[1] for i in range(min(1000, len(train)))]).mean(0)

    outputs = model.translate(sources, torch.ones(n, dtype=torch.long), generator=torch.Generator().manual_seed(seed))
    family = model.domains[1]
    colour_ok, ious = 0, []
    for image, mask in zip(outputs, masks):
        colour_ok += colour_family_of(image, mask, [family, *[f for f in ("red", "green") if f != family]]) == family
        fg = foreground_mask(image)
        ious.append((fg & mask).sum().item() / max((fg | mask).sum().item(), 1))
    return {
        "model_l1": (outputs - targets).abs().mean().item(),
        "identity_l1": (sources - targets).abs().mean().item(),
        "mean_image_l1": (mean_image - targets).abs().mean().item(),
        "colour_accuracy": colour_ok / n,
        "mean_iou": sum(ious) / n,
        "pairs": n,
        "units": "mean |output - target| per pixel and channel, images in [-1, 1]",
        "model": model_path,
        "step": getattr(model, "step", None),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--num-val", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = evaluate(args.model, args.num_val, args.seed)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0 if result["model_l1"] < min(result["identity_l1"], result["mean_image_l1"]) else 1


if __name__ == "__main__":
    sys.exit(main())
