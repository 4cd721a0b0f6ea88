"""Resampling convolutions of the StarGAN v2 blocks, computed with fewer operations than the official order.

The official blocks pool after a 3x3 convolution (downsampling) and upsample before one (decoder). Both pairs are
linear, so each is one strided convolution whose 4x4 kernel is built from the 3x3 one: the same function and the
same parameters, at 16 / 36 of the multiply-adds. Which way a call runs depends on the device and the batch's
size (the thresholds below, measured); nearest upsampling itself is one broadcast copy.
tests/test_stargan_v2_networks.py compares each with the official order in values, gradients and double backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Nearest2x(torch.autograd.Function):
    """``F.interpolate(x, scale_factor=2, mode="nearest")``: the same values and the same gradient kernel.

    The forward is one broadcast copy; on a CPU the interpolate kernel copies its output twice more (about 3x as
    long at the quickstart's shapes). The backward is interpolate's own, so gradients are bit-identical.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        ctx.input_size = (n, c, h, w)
        return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        n, c, h, w = ctx.input_size
        return torch.ops.aten.upsample_nearest2d_backward(grad.contiguous(), [2 * h, 2 * w], [n, c, h, w], 2.0, 2.0)


def upsample_nearest2x(x: torch.Tensor) -> torch.Tensor:
    return _Nearest2x.apply(x)


# On a CPU, a 3x3 convolution followed by a 2x2 average pool runs as one stride-2 4x4 convolution once the batch
# holds this many input pixels (images x height x width). On a 2-core Zen 4 EPYC (AVX-512, no AMX; forward and
# backward, fp32) it then takes 0.54-0.61x as long at 64-256 channels and 64-256 px, 0.68-0.85x at 16-64 channels
# and 16-32 px; with fewer pixels it loses (1.05x at 512 channels, 32 px, one image; 1.2-2.8x at 8-16 px).
POOLED_CONV_MIN_PIXELS = 2048
# The same for nearest upsampling followed by a 3x3 convolution, as one stride-2 4x4 transposed convolution, counted
# in pixels of the (smaller) input: on the same CPU 0.34-0.66x as long at 128-512 channels and 16-128 px, 0.47-0.58x
# at the quickstart's 64 -> 32 channels, 16 px; even at 256 input pixels (0.99-1.02x at 8-16 px).
UPSAMPLED_CONV_MIN_PIXELS = 512


def box_kernel(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel spread over a 2x2 box: the sum of its four placements in a 4x4 kernel."""
    placements = ((0, 1, 0, 1), (1, 0, 0, 1), (0, 1, 1, 0), (1, 0, 1, 0))  # (left, right, top, bottom) padding
    return sum(F.pad(weight, pad) for pad in placements)


def by_stride(x: torch.Tensor, min_pixels: int) -> bool:
    """Whether to compute a resampling convolution of ``x`` as one strided convolution.

    Only on a CPU (GPUs keep the official order: not measured there) and only eagerly: traced graphs
    (torch.compile, torch.export, ONNX) keep the official order, since a branch on the batch size would tie a graph
    exported with a dynamic batch to one side of the threshold, and an exported graph may run on a GPU.
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return False
    return x.device.type == "cpu" and x.shape[0] * x.shape[-2] * x.shape[-1] >= min_pixels


def conv3x3_then_pool(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(conv(x), 2)`` for a 3x3, stride-1, padding-1 ``conv``.

    Equal in exact arithmetic to ``conv2d(x, box_kernel(w) / 4, b, stride=2, padding=1)`` (both linear; the bias
    averages into itself), at 16 instead of 4 * 9 multiply-adds per output pixel. The kernel is built from the
    weight in every call, so the weight's gradient flows through it.
    """
    if not by_stride(x, POOLED_CONV_MIN_PIXELS):
        return F.avg_pool2d(conv(x), 2)
    return F.conv2d(x, box_kernel(conv.weight) * 0.25, conv.bias, stride=2, padding=1)


def upsample_then_conv3x3(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(upsample_nearest2x(x))`` for a 3x3, stride-1, padding-1 ``conv``.

    Equal in exact arithmetic to a stride-2 transposed convolution of ``x`` whose 4x4 kernel is the box kernel,
    flipped and with input and output channels swapped: 16 instead of 4 * 9 multiply-adds per input pixel.
    """
    if not by_stride(x, UPSAMPLED_CONV_MIN_PIXELS):
        return conv(upsample_nearest2x(x))
    kernel = box_kernel(conv.weight).flip(-2, -1).transpose(0, 1)
    return F.conv_transpose2d(x, kernel, conv.bias, stride=2, padding=1)
