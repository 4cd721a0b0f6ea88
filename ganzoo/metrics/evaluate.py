"""``ganzoo eval``: one evaluation protocol for every model family.

For every ordered (source, target) pair of domains the model translates between (a *task*,
named ``src2trg``) and every generation mode the model has (StarGAN v2: ``latent`` and
``reference``; others: ``fixed``), each val image of the source domain is translated into
the target: 10 outputs per input in modes that produce different outputs (StarGAN v2's
protocol), one otherwise. Latent codes come from a seeded generator; references are val
images of the target domain. The outputs stream through the requested metrics
(``metrics`` registry), so nothing is written to disk and memory stays bounded.

Per-task values are averaged over tasks (``fid/latent`` = mean over tasks of
``fid/latent/<task>``), as StarGAN v2 reports them. Every metric returns its protocol
stamp (feature net and weights hash, preprocessing, image counts, split) next to its values.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import torch

from ganzoo.errors import GanzooError
from ganzoo.metrics.weights import WeightsUnavailable


class MetricUnavailable(GanzooError):
    """A metric cannot be computed for this model or machine (reported as n/a with the reason)."""


# --------------------------------------------------------------------------- what is evaluated


class Translator:
    """What evaluation needs from one model, or from a set of pairwise models (CycleGAN on k domains)."""

    def __init__(self, models: list, name: str | None = None):
        if not models:
            raise GanzooError("Nothing to evaluate: no model given.")
        for m in models:
            if getattr(m, "label_kind", "one-hot") != "one-hot":
                raise GanzooError(f'{m.name} translates attributes (label kind "{m.label_kind}"); ganzoo eval measures '
                                  "models whose domains are one label per image.")
        families = sorted({m.name for m in models})
        if len(families) > 1:
            raise GanzooError(f"Several models are evaluated together only as pairwise models of one family (e.g. CycleGANs); "
                              f"got {', '.join(families)}: evaluate them one at a time or use ganzoo compare.")
        self.models = models
        self.name = name or models[0].name
        self.routes: dict[tuple[str, str], tuple[Any, int]] = {}
        for m in models:
            targets = m.sheet_targets()
            for t_name, index in targets:
                for s_name in m.domains:
                    if s_name != t_name:
                        self.routes.setdefault((s_name, t_name), (m, index))
        self.domains = list(dict.fromkeys(d for m in models for d in m.domains))  # first-seen order
        first = models[0]
        self.modes: dict[str, bool] = dict(first.eval_modes)
        self.image_size = first.image_size

    @property
    def tasks(self) -> list[tuple[str, str]]:
        return [(s, t) for s in self.domains for t in self.domains if (s, t) in self.routes]

    @torch.no_grad()
    def generate(self, images, source: str, target: str, mode: str, *, references=None, generator=None) -> torch.Tensor:
        model, index = self.routes[(source, target)]
        device = model.device
        refs = references.to(device) if references is not None else None
        return model.generate(images.to(device), index, mode, references=refs, generator=generator).float().cpu()

    def generator_count(self) -> int:
        return sum(1 for m in self.models for role in m.inference_nets() if role.startswith("generator"))

    def parameter_counts(self) -> dict[str, int]:
        """Parameters to translate between every domain pair (inference), and of every trained network."""
        # inference_nets() holds the EMA copy instead of the trained net where one exists: each role counts once
        inference = sum(sum(p.numel() for p in net.parameters()) for m in self.models
                        for role, net in m.inference_nets().items() if not role.startswith("discriminator"))
        training = sum(sum(p.numel() for p in net.parameters()) for m in self.models for net in m.nets.values())
        return {"inference": inference, "training": training}

    def to(self, device) -> "Translator":
        for m in self.models:
            m.to(device)
        return self


# --------------------------------------------------------------------------- data


class EvalData:
    """Val images of each domain (the inputs, and references) and the real images FID compares with."""

    def __init__(self, root: str | Path, domains: list[str], image_size: int, *, num_val: int | None = None,
                 num_real: int | None = None, real_split: str = "train", seed: int = 0):
        from ganzoo.data.imagefolder import ImageFolderDataset

        self.root = Path(root).expanduser()
        self.val = ImageFolderDataset(str(self.root), "val", image_size=image_size, domains=domains)
        self.real = ImageFolderDataset(str(self.root), real_split, image_size=image_size, domains=domains)
        self._pick(domains, num_val=num_val, num_real=num_real, real_split=real_split, seed=seed)

    @classmethod
    def from_datasets(cls, val, real, root: str | Path, *, num_val: int | None = None, num_real: int | None = None,
                      real_split: str = "train", seed: int = 0) -> "EvalData":
        """The same selection from datasets already built (the trainer's val and train splits, any dataset class);
        ``root`` is where a domain classifier is looked for, and what results name as the data."""
        data = cls.__new__(cls)
        data.root, data.val, data.real = Path(root).expanduser(), val, real
        data._pick(list(val.domains), num_val=num_val, num_real=num_real, real_split=real_split, seed=seed)
        return data

    def _pick(self, domains: list[str], *, num_val: int | None, num_real: int | None, real_split: str, seed: int) -> None:
        self.real_split = real_split
        rng = random.Random(f"ganzoo-eval/{seed}")
        val_groups, real_groups = self.val.indices_by_label(), self.real.indices_by_label()
        # inputs: the first num_val val images of each domain (sorted file order); real: a seeded subset
        self.val_indices = {d: val_groups[i][:num_val] if num_val else val_groups[i] for i, d in enumerate(domains)}
        self.real_indices = {d: sorted(rng.sample(real_groups[i], min(num_real, len(real_groups[i]))))
                             if num_real else real_groups[i] for i, d in enumerate(domains)}

    def load(self, dataset, indices: list[int]) -> torch.Tensor:
        return torch.stack([dataset.load(i) for i in indices])


@dataclass
class GeneratedBatch:
    """One batch of source images and their outputs for one task and mode."""

    source: str
    target: str
    mode: str
    sources: torch.Tensor  # (N, 3, H, W) in [-1, 1]
    outputs: list[torch.Tensor]  # one (N, 3, H, W) per output drawn
    features: list[torch.Tensor] | None = None  # Inception features of each output, when a metric needs them

    @property
    def task(self) -> str:
        return f"{self.source}2{self.target}"


@dataclass
class EvalOptions:
    feature_net: str = "fid_inception"
    fid_weights: str | None = None
    lpips_weights: str | None = None
    classifier: str | None = None  # a classifier folder; default: the one next to the data
    outputs_per_input: int = 10
    num_val: int | None = None
    num_real: int | None = None
    real_split: str = "train"
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    kid_subsets: int = 100
    kid_subset_size: int = 1000


class Resources:
    """The pretrained networks and real-image features of an evaluation, built on first use and
    shared by every model evaluated with the same options (``ganzoo compare``)."""

    def __init__(self, options: EvalOptions, device: torch.device):
        self.options, self.device = options, device
        self.real_feature_cache: dict[tuple, torch.Tensor] = {}
        self._classifier = None

    @cached_property
    def feature_net(self):
        from ganzoo.metrics.features import FeatureNet

        return FeatureNet(self.options.feature_net, self.options.fid_weights, device=self.device)

    @cached_property
    def lpips(self):
        from ganzoo.metrics.lpips import LPIPS

        return LPIPS(self.options.lpips_weights, device=self.device)

    def classifier(self, root: Path):
        from ganzoo.metrics.classifier import default_folder, load_classifier

        if self._classifier is None:
            folder = self.options.classifier
            if folder is None:
                candidates = sorted((root / ".ganzoo" / "classifiers").glob("*/config.json"))
                if not candidates:
                    raise MetricUnavailable(f"no domain classifier for {root}: train one with "
                                            f"`ganzoo train-classifier --data {root}` (saved in {default_folder(root)})")
                folder = candidates[0].parent
            self._classifier = load_classifier(folder).to(self.device)
        return self._classifier


class EvalEnv:
    """What metrics see: the translator, the data, the options and the shared resources."""

    def __init__(self, translator: Translator, data: EvalData, options: EvalOptions, resources: Resources):
        self.translator, self.data, self.options, self.resources = translator, data, options, resources
        self.device = resources.device

    @property
    def feature_net(self):
        return self.resources.feature_net

    @property
    def lpips(self):
        return self.resources.lpips

    def real_features(self, domain: str) -> torch.Tensor:
        data, batch = self.data, self.options.batch_size
        indices = data.real_indices[domain]
        key = (str(data.root), data.real_split, domain, data.real.image_size, tuple(indices))
        cache = self.resources.real_feature_cache
        if key not in cache:
            parts = [self.feature_net(data.load(data.real, indices[i:i + batch])) for i in range(0, len(indices), batch)]
            cache[key] = torch.cat(parts)
        return cache[key]

    @cached_property
    def classifier(self):
        classifier = self.resources.classifier(self.data.root)
        missing = [d for d in self.translator.domains if d not in classifier.domains]
        if missing:
            raise GanzooError(f'The domain classifier in {classifier.folder} does not know domain "{missing[0]}" '
                              f"(it knows {', '.join(classifier.domains)}); retrain it on this data.")
        return classifier


# --------------------------------------------------------------------------- running


@dataclass
class EvalResult:
    model: str
    data: str
    tasks: list[str]
    modes: dict[str, int]  # mode -> outputs per input
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"values", "protocol"} or {"n/a"}
    protocol: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "tasks": self.tasks, "modes": self.modes,
                "protocol": self.protocol, "metrics": self.metrics, "seconds": round(self.seconds, 1)}

    def headline(self) -> dict[str, float]:
        """The task-averaged values (no per-task keys), flattened."""
        return {k: v for m in self.metrics.values() for k, v in m.get("values", {}).items() if k.count("/") <= 1}


DEFAULT_METRICS = ("fid", "kid", "lpips", "domain_accuracy", "content", "params", "flops", "throughput")


def evaluate(translator: Translator, data_root: str | Path | EvalData, metrics: list[str] | None = None,
             options: EvalOptions | None = None, progress: Callable[[int, int, str], None] | None = None,
             resources: Resources | None = None, *, registry=None) -> EvalResult:
    """Run the protocol; metrics not given explicitly whose requirements are missing come back as n/a.

    ``data_root`` is an image folder with val/ (and the real split), or an :class:`EvalData` already made;
    ``registry`` is the one the caller already resolved (the process's when None).
    """
    from ganzoo.trainer import pick_device

    options = options or EvalOptions()
    explicit = metrics is not None
    names = list(metrics) if explicit else list(DEFAULT_METRICS)
    if registry is None:
        from ganzoo.plugins import get_registry

        registry = get_registry()
    metric_classes = {name: registry.get("metrics", name) for name in names}
    if options.outputs_per_input < 1 or options.batch_size < 1:
        raise GanzooError("--outputs-per-input and --batch must be at least 1.")
    if not translator.tasks:
        raise GanzooError(f"{translator.name} translates between none of its domains ({', '.join(translator.domains)}), "
                          "so there is nothing to evaluate.")
    resources = resources or Resources(options, pick_device(options.device))
    device = resources.device
    translator.to(device)
    if isinstance(data_root, EvalData):
        data = data_root
    else:
        data = EvalData(data_root, translator.domains, translator.image_size, num_val=options.num_val,
                        num_real=options.num_real, real_split=options.real_split, seed=options.seed)
    env = EvalEnv(translator, data, options, resources)
    t0 = time.perf_counter()

    result = EvalResult(translator.name, str(data.root), [f"{s}2{t}" for s, t in translator.tasks],
                        {mode: options.outputs_per_input if diverse else 1 for mode, diverse in translator.modes.items()})
    active = {}
    for name, cls in metric_classes.items():
        try:
            active[name] = cls(env)
        except (WeightsUnavailable, MetricUnavailable) as exc:
            if explicit:
                raise
            result.metrics[name] = {"n/a": str(exc)}
    needs_features = any(getattr(m, "needs_features", False) for m in active.values())
    if needs_features:  # say it now, not after generating everything
        check_feature_counts(translator, data, result.modes)

    total = sum(len(data.val_indices[s]) for s, _ in translator.tasks) * len(translator.modes)
    done = 0
    for mode, n_out in result.modes.items():
        for source, target in translator.tasks:
            indices = data.val_indices[source]
            for b, start in enumerate(range(0, len(indices), options.batch_size)):
                part = indices[start:start + options.batch_size]
                sources = data.load(data.val, part)
                outputs = []
                for j in range(n_out):
                    gen = torch.Generator().manual_seed(_seed(options.seed, mode, source, target, b, j))
                    refs = None
                    if mode == "reference":
                        pool = data.val_indices[target]
                        refs = data.load(data.val, [pool[int(i)] for i in torch.randint(len(pool), (len(part),), generator=gen)])
                    outputs.append(translator.generate(sources, source, target, mode, references=refs, generator=gen))
                features = [env.feature_net(o) for o in outputs] if needs_features else None
                batch = GeneratedBatch(source, target, mode, sources, outputs, features)
                for metric in active.values():
                    metric.update(batch)
                done += len(part)
                if progress:
                    progress(done, total, f"{mode} {source}2{target}")
    for name, metric in active.items():
        try:
            result.metrics[name] = {"values": metric.result(), "protocol": metric.protocol()}
        except MetricUnavailable as exc:
            result.metrics[name] = {"n/a": str(exc)}
    result.protocol = {
        "inputs": f"val split, {_count(data.val_indices)} images "
                  f"({'the first ' + str(options.num_val) + ' per domain' if options.num_val else 'all'})",
        "outputs_per_input": result.modes, "seed": options.seed, "image_size": translator.image_size,
        "device": str(device),
    }
    result.seconds = time.perf_counter() - t0
    return result


def check_feature_counts(translator: Translator, data: EvalData, modes: dict[str, int]) -> None:
    """FID and KID compare sets of features: each generated and real set needs at least 2 images."""
    fewest_fake = min(len(data.val_indices[s]) for s, _ in translator.tasks) * min(modes.values())
    fewest_real = min(len(v) for v in data.real_indices.values())
    if fewest_fake < 2 or fewest_real < 2:
        raise GanzooError(f"FID and KID need at least 2 images per set, but a task would have {fewest_fake} generated "
                          f"and a domain {fewest_real} real; raise --num-val / --num-real or add images.")


def _count(groups: dict[str, list[int]]) -> int:
    return sum(len(v) for v in groups.values())


def _seed(*parts) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:7], "little")


def translator_for(paths: list[str], device: str = "cpu", name: str | None = None) -> Translator:
    """Load model folders / run dirs / Hub ids; several (pairwise CycleGANs) become one translator."""
    import ganzoo

    return Translator([ganzoo.load(path, device=device) for path in paths], name=name)


def folder_features(folder: str | Path, net, batch_size: int = 50) -> torch.Tensor:
    """Features of every image file under ``folder`` (sorted), at its own size (the net resizes)."""
    from ganzoo.data.images import list_images, read_image, to_tensor

    paths = list_images(folder)
    if len(paths) < 2:
        raise GanzooError(f"{folder} holds {len(paths)} image(s); FID needs at least 2.")
    parts = []
    for i in range(0, len(paths), batch_size):
        parts.append(net(torch.stack([to_tensor(read_image(p)) for p in paths[i:i + batch_size]])))
    return torch.cat(parts)


def fid_between_folders(real: str | Path, fake: str | Path, *, feature_net: str = "fid_inception",
                        weights: str | None = None, device: str = "cpu") -> float:
    """FID between two folders of images, as ``python -m pytorch_fid REAL FAKE`` computes it."""
    from ganzoo.metrics.distances import frechet_distance
    from ganzoo.metrics.features import FeatureNet

    net = FeatureNet(feature_net, weights, device=device)
    return frechet_distance(folder_features(real, net), folder_features(fake, net))
