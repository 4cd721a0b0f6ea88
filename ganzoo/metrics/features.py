"""Inception-v3 pool features for FID and KID, from one of two feature nets.

- ``fid_inception``: the standard FID network (TensorFlow's 2015 Inception graph as ported
  by pytorch-fid, whose architecture we build from pytorch-fid's own blocks). With the same
  weights file and images, features and FID equal pytorch-fid's. Images are quantised to
  8 bits (as when saved to PNG), scaled to [0, 1] and resized bilinearly to 299 x 299 inside
  the network, exactly as pytorch-fid does.
- ``torchvision_inception``: torchvision's ImageNet Inception-v3, the feature net the
  StarGAN v2 paper used for its FID (so its numbers are not comparable with pytorch-fid's).
  Images are resized to 299 x 299 and ImageNet-normalised, as in StarGAN v2's eval loader.

Every number computed from these features carries :meth:`FeatureNet.protocol`.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import torch
from torch import nn
from torch.nn import functional as F

from ganzoo.errors import GanzooError
from ganzoo.metrics.weights import FID_INCEPTION, TORCHVISION_INCEPTION, load_into, read_state_dict, resolve_weights

FEATURE_NETS = ("fid_inception", "torchvision_inception")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images as 8-bit values (what saving them to PNG keeps), scaled to [0, 1]."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().div(255.0)


def _fid_inception_layout() -> nn.Module:
    """pytorch-fid's FID Inception, randomly initialised (the layout check, and RANDOM weights).

    The block choices mirror ``pytorch_fid.inception.fid_inception_v3`` (facts of the TF graph).
    """
    from pytorch_fid import inception as pf

    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def _random_weights(template: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded He-normal convolutions and identity batch norms: activations keep their scale through
    the 94 layers (PyTorch's default init makes them vanish, and every image's features collapse)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in template.items():
        if key.endswith("conv.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=gen) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = torch.ones_like(value)
        elif key.endswith("num_batches_tracked"):
            state[key] = value.clone()
        else:
            state[key] = torch.zeros_like(value)
    return state


def build_fid_inception(state: dict[str, torch.Tensor] | None, where: str = "the FID weights") -> nn.Module:
    """pytorch-fid's ``InceptionV3`` (2048-d pool block) with ``state`` loaded (None: random init).

    pytorch-fid fetches its weights by URL inside the constructor; we hand it ours instead, so no
    download can happen and the architecture is pytorch-fid's own.
    """
    from pytorch_fid import inception as pf

    template = _fid_inception_layout().state_dict()
    if state is None:
        state = _random_weights(template)
    else:
        from ganzoo.checkpoint import layout_mismatch

        problem = layout_mismatch(template, state)
        if problem:
            raise GanzooError(f"{where} is not pytorch-fid's FID Inception state dict: it {problem}.")
    with mock.patch.object(pf, "load_state_dict_from_url", lambda *args, **kwargs: state):
        net = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True,
                             use_fid_inception=True)
    return net.eval()


def build_torchvision_inception(state: dict[str, torch.Tensor] | None, where: str = "the Inception weights") -> nn.Module:
    """torchvision's Inception-v3 as loaded with ImageNet weights (transform_input on), classifier removed."""
    from torchvision.models import inception_v3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # RANDOM weights are the same in every run
        net = inception_v3(weights=None, aux_logits=True, init_weights=state is None, transform_input=True)
    if state is not None:
        from pathlib import Path

        load_into(net, state, Path(where), "torchvision's Inception-v3 state dict")
    net.fc = nn.Identity()
    return net.eval()


class FeatureNet:
    """Images in [-1, 1] -> (N, 2048) Inception pool features, with the protocol stamp."""

    dim = 2048

    def __init__(self, kind: str = "fid_inception", weights: str | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 50):
        if kind not in FEATURE_NETS:
            from ganzoo.errors import did_you_mean

            raise GanzooError(f'Unknown feature net "{kind}".{did_you_mean(kind, FEATURE_NETS)} Choose one of {", ".join(FEATURE_NETS)}.')
        self.kind = kind
        self.spec = FID_INCEPTION if kind == "fid_inception" else TORCHVISION_INCEPTION
        self.weights = resolve_weights(self.spec, weights)
        state = None if self.weights.is_random else read_state_dict(self.weights.path)
        where = "random" if state is None else str(self.weights.path)
        build = build_fid_inception if kind == "fid_inception" else build_torchvision_inception
        self.device = torch.device(device)
        self.net = build(state, where).to(self.device)
        self.net.requires_grad_(False)
        self.batch_size = batch_size

    def protocol(self) -> dict[str, Any]:
        resize = ("8-bit quantised, [0, 1], bilinear to 299x299 (pytorch-fid)" if self.kind == "fid_inception"
                  else "8-bit quantised, bilinear (antialiased) to 299x299, ImageNet mean/std (torchvision's Inception-v3 preprocessing)")
        return {"feature_net": self.kind, "weights": self.weights.stamp(self.spec), "weights_source": self.weights.source,
                "preprocess": resize}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        chunks = []
        for part in images.split(self.batch_size):
            x = quantize(part.to(self.device))
            if self.kind == "fid_inception":
                feats = self.net(x)[0]
            else:
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False, antialias=True)
                mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
                std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
                feats = self.net((x - mean) / std)
            chunks.append(feats.reshape(part.shape[0], -1).double().cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, self.dim, dtype=torch.float64)
