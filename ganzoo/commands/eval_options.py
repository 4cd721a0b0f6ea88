"""Options that ``ganzoo eval`` and ``ganzoo compare`` share, and how they become :class:`EvalOptions`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ganzoo.errors import GanzooError


def eval_options(feature_net, fid_weights, lpips_weights, classifier, outputs, num_val, num_real, batch, seed, device):
    from ganzoo.metrics.evaluate import EvalOptions
    from ganzoo.recipe import check_seed

    check_seed(seed)
    return EvalOptions(feature_net=feature_net, fid_weights=fid_weights, lpips_weights=lpips_weights,
                       classifier=str(classifier) if classifier else None, outputs_per_input=outputs, num_val=num_val,
                       num_real=num_real, batch_size=batch, seed=seed, device=device)


def metric_names(metrics: Optional[str]) -> Optional[list]:
    if not metrics:
        return None
    from ganzoo.errors import did_you_mean

    from ganzoo.plugins import get_registry

    registry = get_registry()
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    known = registry.names("metrics")
    for name in names:
        if name not in known:
            raise GanzooError(f'--metrics: unknown metric "{name}".{did_you_mean(name, known)} Metrics: {", ".join(known)}.')
    return names


# Options shared by `eval` and `compare`.
DATA_HELP = "image folder ROOT/{train,val}/<domain>/ (ganzoo make-shapes makes one)"
MetricsOption = Annotated[Optional[str], typer.Option("--metrics", help="comma-separated (default: all; unavailable ones show n/a)")]
FeatureNetOption = Annotated[str, typer.Option(
    "--feature-net", help="fid_inception (pytorch-fid's FID weights) or torchvision_inception (ImageNet weights, as the StarGAN v2 paper)")]
FidWeightsOption = Annotated[Optional[str], typer.Option(
    "--fid-weights", help="feature-net weights file (.pth/.safetensors) or hf://ORG/REPO/FILE; default $GANZOO_FID_WEIGHTS "
                          "(or $GANZOO_TV_INCEPTION_WEIGHTS), then torch.hub's cache; 'random' = random init for smoke tests")]
LpipsWeightsOption = Annotated[Optional[str], typer.Option(
    "--lpips-weights", help="AlexNet weights for LPIPS (file or hf://ORG/REPO/FILE); default $GANZOO_LPIPS_BACKBONE, then "
                            "torch.hub's cache (alexnet-owt-7be5be79.pth)")]
OutputsOption = Annotated[int, typer.Option("--outputs-per-input", min=1, help="outputs per input in modes with random styles")]
NumValOption = Annotated[Optional[int], typer.Option("--num-val", min=1, help="inputs per source domain (default: all val images)")]
NumRealOption = Annotated[Optional[int], typer.Option("--num-real", min=2, help="real images per domain for FID/KID (default: all train images)")]
SeedOption = Annotated[int, typer.Option("--seed")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N")]
