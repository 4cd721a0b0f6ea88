"""ganzoo: a plugin-based GAN zoo for image-to-image translation.

Importing ganzoo is cheap; torch is imported only when a model, dataset or
trainer is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "list_models", "GanzooError"]

from ganzoo.errors import GanzooError


def load(path_or_repo: str, *, device: str = "cpu", revision: str | None = None):
    """Load a trained model from a model folder, run directory, Hub repo or pretrained name.

    ``path_or_repo`` is a local path, a Hub id (``org/name``, ``org/name@revision``
    or ``revision=``) or a zoo name (``stargan_v2.afhq``, see ``ganzoo list --pretrained``);
    Hub models are downloaded into the Hugging Face cache first.

    Returns the model family's :class:`ganzoo.model.GANModel`; ``model.nets``
    maps network roles to ``nn.Module`` s (``model.ema_nets`` holds the EMA
    copies used for inference), ``model.translate(images, target)`` translates.
    """
    from pathlib import Path

    from ganzoo.checkpoint import load_model

    path = str(path_or_repo)
    if not Path(path).exists():
        from ganzoo import hub, zoo

        if zoo.is_pretrained_name(path) or hub.is_hub_id(path):
            return load_model(hub.resolve(path, revision=revision, for_inference=True), device=device)
    if revision is not None:
        raise GanzooError("revision= needs a Hub repo id; local folders have no revisions.")
    return load_model(path, device=device)


def list_models() -> list[str]:
    """Names of the registered models (training algorithms)."""
    from ganzoo.plugins import get_registry

    return get_registry().names("models")
