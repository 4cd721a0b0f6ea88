"""Metrics and the evaluation protocol (``ganzoo eval``, ``ganzoo compare``).

- :mod:`~ganzoo.metrics.features`: Inception-v3 feature nets for FID / KID (pytorch-fid's FID
  network, or torchvision's ImageNet one as the StarGAN v2 paper used);
- :mod:`~ganzoo.metrics.distances`: Fréchet and kernel distances (torchmetrics' maths; FID of fewer
  images than feature dimensions from their cross products);
- :mod:`~ganzoo.metrics.lpips`: LPIPS and the StarGAN v2 diversity score;
- :mod:`~ganzoo.metrics.classifier`: the timm domain classifier (``ganzoo train-classifier``);
- :mod:`~ganzoo.metrics.content`: content preservation;
- :mod:`~ganzoo.metrics.standard`: the registered metrics; :mod:`~ganzoo.metrics.evaluate`: the protocol.

Pretrained weights are never downloaded: see :mod:`~ganzoo.metrics.weights`.
"""
