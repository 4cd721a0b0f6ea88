"""The built-in metrics (registered under ``metrics`` by ganzoo's core plugin).

A metric is a class built with the evaluation's :class:`~ganzoo.metrics.evaluate.EvalEnv`
(raise ``MetricUnavailable`` / ``WeightsUnavailable`` there when it cannot run: it is then
reported as n/a with the reason), fed every :class:`GeneratedBatch` through ``update``, and
asked for ``result()`` (name -> number) and ``protocol()`` (what the numbers mean) at the end.
Third-party plugins register their own the same way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import torch

from ganzoo.metrics.evaluate import EvalEnv, GeneratedBatch, MetricUnavailable


def _mean(values) -> float:
    values = list(values)
    return float(sum(values) / len(values))


class Metric:
    name = "metric"
    description = ""
    needs_features = False

    def __init__(self, env: EvalEnv):
        self.env = env

    def update(self, batch: GeneratedBatch) -> None:
        pass

    def result(self) -> dict[str, float]:
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        return {}


class _PerTask(Metric):
    """Collects a per-(mode, task) list of numbers and reports each and their mean over tasks per mode."""

    def __init__(self, env: EvalEnv):
        super().__init__(env)
        self.per_task: dict[tuple[str, str], list[float]] = defaultdict(list)

    def values_of(self, mode: str, task: str) -> float:
        return _mean(self.per_task[(mode, task)])

    def result(self) -> dict[str, float]:
        out: dict[str, float] = {}
        by_mode: dict[str, list[float]] = defaultdict(list)
        for mode, task in self.per_task:
            value = self.values_of(mode, task)
            out[f"{self.name}/{mode}/{task}"] = value
            by_mode[mode].append(value)
        for mode, values in by_mode.items():
            out[f"{self.name}/{mode}"] = _mean(values)
        return out


class FID(_PerTask):
    """Fréchet distance between Inception features of the outputs and of real target-domain images."""

    name = "fid"
    description = "Fréchet Inception distance to real images of the target domain (lower is better)"
    needs_features = True

    def __init__(self, env: EvalEnv):
        super().__init__(env)
        self.net = env.feature_net  # raises WeightsUnavailable when the weights are not on this machine
        self.fakes: dict[tuple[str, str], list[torch.Tensor]] = defaultdict(list)
        self.targets: dict[str, str] = {}

    def update(self, batch: GeneratedBatch) -> None:
        self.fakes[(batch.mode, batch.task)].extend(batch.features)
        self.targets[batch.task] = batch.target
        self.per_task.setdefault((batch.mode, batch.task), [])

    def distance(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        from ganzoo.metrics.distances import frechet_distance

        return frechet_distance(real, fake)

    def values_of(self, mode: str, task: str) -> float:
        fake = torch.cat(self.fakes[(mode, task)])
        return self.distance(self.env.real_features(self.targets[task]), fake)

    def protocol(self) -> dict[str, Any]:
        data = self.env.data
        n_fake = {f"{m}/{t}": sum(f.shape[0] for f in feats) for (m, t), feats in self.fakes.items()}
        return {**self.net.protocol(),
                "real": f"{data.real_split} split of the target domain, " + ", ".join(
                    f"{d} {len(i)}" for d, i in data.real_indices.items()) + " images",
                "fake": "val inputs of the source domain x outputs per input",
                "n_fake_per_task": n_fake}


class KID(FID):
    """Kernel Inception distance (unbiased MMD^2, cubic polynomial kernel), mean over random subsets."""

    name = "kid"
    description = "kernel Inception distance to real images of the target domain (lower is better)"

    def distance(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        from ganzoo.metrics.distances import kernel_distance

        o = self.env.options
        mean, _ = kernel_distance(real, fake, subsets=o.kid_subsets, subset_size=o.kid_subset_size, seed=o.seed)
        return mean

    def protocol(self) -> dict[str, Any]:
        o = self.env.options
        return {**super().protocol(), "kid": f"{o.kid_subsets} subsets of min({o.kid_subset_size}, set sizes) images, "
                                             f"kernel (x.y/d + 1)^3, seed {o.seed}"}


class LPIPSDiversity(_PerTask):
    """Mean pairwise LPIPS between the outputs of one input (StarGAN v2's diversity)."""

    name = "lpips"
    description = "diversity: mean pairwise LPIPS among the outputs of one input (higher = more diverse)"

    def __init__(self, env: EvalEnv):
        super().__init__(env)
        if not any(env.translator.modes.values()):
            raise MetricUnavailable("deterministic model: one output per input, so there is no diversity to measure")
        self.lpips = env.lpips

    def update(self, batch: GeneratedBatch) -> None:
        if len(batch.outputs) >= 2:
            # StarGAN v2: per batch, the mean over pairs of batch-mean LPIPS; then the mean over batches
            self.per_task[(batch.mode, batch.task)].append(float(self.lpips.diversity(batch.outputs).mean()))

    def protocol(self) -> dict[str, Any]:
        return {**self.lpips.protocol(), "pairs": "all pairs of the outputs of each input, batch means averaged"}


class DomainAccuracy(_PerTask):
    """Share of outputs that the domain classifier assigns to the target domain."""

    name = "domain_accuracy"
    description = "share of outputs a classifier puts in the target domain (higher is better)"

    def __init__(self, env: EvalEnv):
        super().__init__(env)
        self.classifier = env.classifier

    def update(self, batch: GeneratedBatch) -> None:
        want = self.classifier.domains.index(batch.target)
        for out in batch.outputs:
            self.per_task[(batch.mode, batch.task)].extend((self.classifier.predict(out) == want).float().tolist())

    def protocol(self) -> dict[str, Any]:
        return self.classifier.protocol()


class ContentPreservation(_PerTask):
    name = "content"
    description = "content preservation: edge-structure SSIM between source and output (1 = same layout)"

    def update(self, batch: GeneratedBatch) -> None:
        from ganzoo.metrics.content import content_preservation

        for out in batch.outputs:
            self.per_task[(batch.mode, batch.task)].extend(content_preservation(batch.sources, out).tolist())

    def protocol(self) -> dict[str, Any]:
        from ganzoo.metrics.content import DESCRIPTION

        return {"content": DESCRIPTION}


class Params(Metric):
    name = "params"
    description = "parameters: to translate between all domains (inference) and of all trained networks"

    def result(self) -> dict[str, float]:
        t = self.env.translator
        counts = t.parameter_counts()
        return {"params/inference": counts["inference"], "params/training": counts["training"],
                "params/generators": t.generator_count(), "params/models": len(t.models)}

    def protocol(self) -> dict[str, Any]:
        return {"generators": "generator networks needed to translate between every ordered pair of the domains"}


def _probe_batch(env: EvalEnv, n: int) -> tuple[torch.Tensor, str, str, torch.Tensor]:
    source, target = env.translator.tasks[0]
    data = env.data
    pool = data.val_indices[source]
    images = data.load(data.val, [pool[i % len(pool)] for i in range(n)])
    refs_pool = data.val_indices[target]
    refs = data.load(data.val, [refs_pool[i % len(refs_pool)] for i in range(n)])
    return images, source, target, refs


class FLOPs(Metric):
    name = "flops"
    description = "FLOPs to translate one image (torch.utils.flop_counter: convolutions and matmuls)"

    def result(self) -> dict[str, float]:
        from ganzoo.bench import flop_counter

        images, source, target, refs = _probe_batch(self.env, 1)
        out = {}
        for mode in self.env.translator.modes:
            with flop_counter() as counter:
                self.env.translator.generate(images, source, target, mode, references=refs,
                                             generator=torch.Generator().manual_seed(0))
            out[f"flops/{mode}"] = counter.get_total_flops()
        return out


class Throughput(Metric):
    name = "throughput"
    description = "inference images per second (batch of 16, timed over at least a second after one warm-up call)"
    batch = 16
    min_seconds = 1.0

    def result(self) -> dict[str, float]:
        images, source, target, refs = _probe_batch(self.env, self.batch)
        out = {}
        device = self.env.device
        self.calls = {}
        for mode in self.env.translator.modes:
            def call():
                self.env.translator.generate(images, source, target, mode, references=refs,
                                             generator=torch.Generator().manual_seed(0))
                if device.type == "cuda":
                    torch.cuda.synchronize(device)

            call()
            calls, t0 = 0, time.perf_counter()
            while calls < 3 or time.perf_counter() - t0 < self.min_seconds:  # short calls: time enough of them
                call()
                calls += 1
            out[f"throughput/{mode}"] = self.batch * calls / (time.perf_counter() - t0)
            self.calls[mode] = calls
        return out

    def protocol(self) -> dict[str, Any]:
        return {"throughput": f"batch {self.batch}, timed over >= {self.min_seconds:g} s ({self.calls} calls), "
                              f"{self.env.device}" + (f", {torch.get_num_threads()} CPU threads" if self.env.device.type == "cpu" else "")}
