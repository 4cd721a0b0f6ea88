"""ganzoo: a plugin-based GAN zoo for image-to-image translation.

Importing ganzoo is cheap; torch is imported only when a model, dataset or
trainer is used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load", "list_models", "GanzooError"]

from ganzoo.errors import GanzooError


def load(path_or_repo: str, *, device: str = "cpu", revision: str | None = None):
    """Load a trained model from a model folder or run directory.

    Returns the model family's :class:`ganzoo.model.GANModel`; ``model.nets``
    maps network roles to ``nn.Module`` s (``model.ema_nets`` holds the EMA
    copies used for inference), ``model.translate(images, target)`` translates.
    """
    from ganzoo.checkpoint import load_model

    if revision is not None:
        raise GanzooError("revision= needs a Hub repo id; local folders have no revisions.")
    return load_model(path_or_repo, device=device)


def list_models() -> list[str]:
    """Names of the registered models (training algorithms)."""
    from ganzoo.plugins import get_registry

    return get_registry().names("models")
