"""Draw docs/export_onnx.png: the same inputs through PyTorch and through the exported ONNX file in onnxruntime.

    python docs/make_export_picture.py MODEL_DIR [--target DOMAIN] [--size 96] [--out docs/export_onnx.png]

MODEL_DIR is a model whose family exports a dynamic-size generator (the README's picture used
``recipes/cyclegan_shapes.yaml``, red -> blue, trained at 32 px). The model is exported with the real CLI
(``ganzoo export --format onnx``, which also checks it to 1e-4 on its own inputs); then held-out shapes at
``--size`` px (not the training size: the graph's height and width are dynamic) go through ``ganzoo.load(...).translate``
and through onnxruntime. Columns: input, PyTorch, onnxruntime, 10^4 x |difference|. The largest difference is printed.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--target", default="blue")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/export_onnx.png"))
    args = parser.parse_args()

    import ganzoo
    from ganzoo.data.shapes import render_item
    from ganzoo.export import load_runner

    net = ganzoo.load(str(args.model))
    target = net.domains.index(args.target)
    source = net.domains[1 - target] if len(net.domains) == 2 else net.domains[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "onnx"
        subprocess.run([sys.executable, "-m", "ganzoo", "export", str(args.model), "--format", "onnx", "--out", str(out)],
                       check=True)
        manifest = json.loads((out / "export.json").read_text())
        graph = next(g for g in manifest["graphs"] if args.target in g.get("description", "") or
                     g["name"].endswith(f"2{'b' if target == 1 else 'a'}"))
        run = load_runner("onnx", out / graph["file"])
        rng = random.Random(7)
        items = [render_item(rng, args.size, source)[0] for _ in range(args.rows)]
        x = torch.stack([torch.from_numpy(np.asarray(i, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1 for i in items])
        ours = net.translate(x, torch.full((len(x),), target))
        theirs = run(x)
    gap = (ours - theirs).abs()
    print(f"{graph['name']} at {args.size} px: largest |PyTorch - onnxruntime| = {gap.max().item():.2e}")

    def tile(t: torch.Tensor) -> np.ndarray:
        return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()

    rows = [np.concatenate([tile(x[i]), tile(ours[i]), tile(theirs[i]), tile((gap[i] * 1e4).clamp(0, 2) - 1)], axis=1)
            for i in range(len(x))]
    Image.fromarray(np.concatenate(rows, axis=0)).resize((4 * 128, len(x) * 128), Image.NEAREST).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
