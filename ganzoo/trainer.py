"""One generic training loop for every model family.

The model plugin owns its train step (losses, which optimiser steps when);
the trainer owns the rest: device, precision, data streaming, EMA, learning
rate schedules, checkpoints, resume, samples, logs and progress.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ganzoo import checkpoint as ckpt
from ganzoo import distributed
from ganzoo.errors import DataError, GanzooError, SplitMissing, TrainingError
from ganzoo.model import GANModel, data_kwargs
from ganzoo.recipe import Recipe


# --------------------------------------------------------------------------- device and precision


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GanzooError(f'train.device "{name}" is not a device name; use auto, cpu, cuda or cuda:N.') from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanzooError(f'train.device is "{name}" but no CUDA GPU is visible; use --set train.device=cpu or auto.')
    return device


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` (the default): bf16 autocast on a CUDA GPU with native bf16 (Ampere and later), fp32 elsewhere."""
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return "bf16"
    return "fp32"


@dataclass
class StepContext:
    """What a model's ``train_step`` gets from the trainer."""

    device: torch.device
    precision: str
    optimizers: dict[str, torch.optim.Optimizer]
    scaler: torch.amp.GradScaler | None = None
    rank: int = 0
    world_size: int = 1

    def autocast(self):
        """Mixed precision for forward passes (losses that need fp32 should leave it)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def randn(self, n: int, *shape: int, device=None) -> torch.Tensor:
        """Per-example Gaussian noise for this process's ``n`` examples that does not depend on how the global
        batch is split: every rank draws the whole global batch's noise and keeps its own rows, so the RNG
        stays in step across ranks and a distributed run draws what the 1-process run draws."""
        if self.world_size == 1:
            return torch.randn(n, *shape, device=device)
        full = torch.randn(n * self.world_size, *shape, device=device)
        return full[self.rank * n:(self.rank + 1) * n]

    def optimize(self, loss: torch.Tensor, *roles: str) -> None:
        """Zero every gradient, back-propagate ``loss`` and step the optimisers of ``roles``."""
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            for role in roles:
                self.scaler.step(self.optimizers[role])
            self.scaler.update()
        else:
            loss.backward()
            for role in roles:
                self.optimizers[role].step()


# --------------------------------------------------------------------------- data streaming


class StepSampler(torch.utils.data.Sampler):
    """Yields, for each step, a list of ``(index, seed)`` pairs drawn from ``(seed, step)`` alone.

    Indices are class balanced (a random domain, then a random image of it), as
    the official StarGAN v2 loader samples. Because nothing depends on earlier
    steps, a resumed run continues with exactly the batches it would have seen.
    """

    def __init__(self, groups: list[list[int]], batch_size: int, seed: int, start_step: int, total_steps: int, balanced: bool = True,
                 rank: int = 0, world_size: int = 1):
        self.groups, self.batch_size, self.seed = groups, batch_size, seed
        self.start_step, self.total_steps, self.balanced = start_step, total_steps, balanced
        self.all_indices = [i for g in groups for i in g]
        # Under DDP ``batch_size`` is the global batch; this rank takes its contiguous chunk of it.
        self.rank, self.world_size = rank, world_size
        self.local = distributed.check_batch(batch_size, world_size)

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        from ganzoo.data.base import balanced_index

        for step in range(self.start_step, self.total_steps):
            rng = random.Random(self.seed * 1_000_003 + step)
            batch = []
            for _ in range(self.batch_size):
                index = balanced_index(self.groups, rng) if self.balanced else rng.choice(self.all_indices)
                batch.append((index, rng.getrandbits(63)))
            yield batch[self.rank * self.local:(self.rank + 1) * self.local]


class TrainItems(torch.utils.data.Dataset):
    """Turns ``(index, seed)`` into the model's training example."""

    def __init__(self, dataset, model: GANModel):
        self.dataset, self.model = dataset, model

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key
        return self.model.training_item(self.dataset, index, random.Random(seed))


def build_dataset(recipe: Recipe, split: str):
    from ganzoo.plugins import get_registry

    dataset_cls = get_registry().get("datasets", recipe.data.name)
    try:
        return dataset_cls(split=split, **data_kwargs(recipe))
    except DataError as exc:
        hint = recipe.data.download_hint
        if hint and "missing" in str(exc):
            raise type(exc)(f"{str(exc).rstrip('.')}; {hint}") from None  # same class: SplitMissing stays SplitMissing
        raise


# --------------------------------------------------------------------------- EMA and schedules


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * net for parameters; buffers are copied."""
    ema_params = [p for p in ema.parameters()]
    net_params = [p.detach() for p in net.parameters()]
    if ema_params:
        torch._foreach_lerp_(ema_params, net_params, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), net.buffers()):
        b_ema.copy_(b)


def lr_factor(schedule: str, decay_start: int, total: int):
    def factor(step: int) -> float:
        if schedule == "constant" or step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / max(1, total - decay_start))

    return factor


# --------------------------------------------------------------------------- the trainer


@dataclass
class RunResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    losses: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: str | Path, *, resume: bool = False, console=None, quiet: bool = False):
        from rich.console import Console

        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.cfg = recipe.train

    # ------------------------------------------------------------------ setup

    def _prepare_run_dir(self) -> None:
        checkpoints = self.run_dir / "checkpoints"
        created = [p for p in (checkpoints, *checkpoints.parents) if not p.exists()]  # deepest first
        try:
            checkpoints.mkdir(parents=True, exist_ok=True)
            probe = self.run_dir / ".write-test"
            probe.write_bytes(b"0" * 1024)
            probe.unlink()
        except OSError as exc:
            raise TrainingError(f"Cannot write to the output directory {self.run_dir} ({exc.strerror or exc}); "
                                "choose a writable --out.") from None
        try:
            self._check_disk_space()
        except TrainingError:
            for path in created:  # a full disk leaves no half-made run directory behind
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        (self.run_dir / "samples").mkdir(exist_ok=True)
        if self.resume:
            _remove_leftovers(self.run_dir)

    def checkpoint_bytes(self) -> int:
        """About how many bytes one checkpoint of this model takes: weights, EMA copies and Adam's two moments."""
        def size(tensors) -> int:
            return sum(t.numel() * t.element_size() for t in tensors)

        weights = sum(size(net.state_dict().values()) for group in (self.model.nets, self.model.ema_nets) for net in group.values())
        moments = 2 * sum(size(p for p in net.parameters() if p.requires_grad) for net in self.model.nets.values())
        return weights + moments

    def _check_disk_space(self) -> None:
        """Refuse to start when the disk cannot hold the checkpoints the run will keep (plus the one being written)."""
        try:
            free = shutil.disk_usage(self.run_dir).free
        except OSError:
            return  # no usage figures (some network file systems): the write probe still runs
        have = len(list((self.run_dir / "checkpoints").glob("step_*"))) if self.resume else 0
        count = max(1, self.cfg.keep_checkpoints + 1 - have)
        need = count * self.checkpoint_bytes() + 16 * 2**20  # and some room for samples and logs
        if free < need:
            raise TrainingError(
                f"The disk holding {self.run_dir} has {_human(free)} free but this run needs about {_human(need)} "
                f"({count} checkpoint(s) of {_human(self.checkpoint_bytes())}); free some space, choose another --out "
                "or lower train.keep_checkpoints."
            )

    def _setup(self) -> None:
        from ganzoo.plugins import get_registry

        cfg = self.cfg
        self.dist = distributed.env_info()
        distributed.check_batch(self.recipe.data.batch_size, self.dist.world_size)
        self.device = distributed.init(self.dist, pick_device(cfg.device))
        if not self.dist.is_main:
            self.quiet = True
        self.precision = resolve_precision(cfg.precision, self.device)
        if self.device.type == "cpu" and self.precision == "fp16" and not self.quiet:
            self.console.print("[yellow]note:[/] fp16 on a CPU runs (to check a recipe before a GPU run) but is slower "
                               "than fp32; use fp32 or bf16 to train on a CPU.", highlight=False)
        if cfg.threads:
            # Small networks on few cores run faster on one thread than on several competing ones.
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)

        self.dataset = build_dataset(self.recipe, "train")
        try:
            self.val_dataset = build_dataset(self.recipe, "val")
        except SplitMissing as exc:
            # No val split at all: samples come from the training images. A val split that exists but is
            # broken (a domain missing, no readable images) is an error like any other data error.
            self.val_dataset = self.dataset
            if not self.quiet:
                from rich.markup import escape

                self.console.print(f"[yellow]note:[/] no val split ({escape(str(exc).rstrip('.'))}); samples use training images.",
                                   highlight=False)
        if list(self.val_dataset.domains) != list(self.dataset.domains):
            raise DataError(
                f"The val split's domains ({', '.join(self.val_dataset.domains)}) differ from the train split's "
                f"({', '.join(self.dataset.domains)}); give val/ the same domain folders as train/ or set data.domains."
            )
        model_cls = get_registry().get("models", self.recipe.model)
        self.model: GANModel = model_cls(self.recipe, self.dataset.domains)
        self.model.build()
        self.model.to(self.device)
        if cfg.channels_last:
            for net in self.model.nets.values():
                net.to(memory_format=torch.channels_last)
        self._probe()
        if cfg.compile:
            # Module.compile() compiles in place: state_dict keys (and so checkpoints) stay unchanged.
            for net in self.model.nets.values():
                net.compile()
        for ds, split in ((self.dataset, "train"), (self.val_dataset, "val")):
            skipped = getattr(ds, "skipped", [])
            if skipped and not self.quiet:
                path, why = skipped[0]
                self.console.print(f"[yellow]note:[/] {len(skipped)} {split} file(s) skipped as unreadable "
                                   f"(first: {path}: {why}).", highlight=False)
        if self.dist.active:
            distributed.convert_sync_batchnorm(self.model.nets, self.device)
        self.optimizers = self.model.build_optimizers()
        # One DDP wrapper per network, in model.nets only while train_step runs (see ganzoo.distributed).
        self.ddp_nets = distributed.wrap(self.model.nets, self.device) if self.dist.active else None
        factor = lr_factor(self.model.optim.schedule, self.model.optim.decay_start, cfg.steps)
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, factor) for name, opt in self.optimizers.items()}
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        self.ctx = StepContext(self.device, self.precision, self.optimizers, self.scaler,
                               self.dist.rank, self.dist.world_size)
        self.step = 0

    def _probe(self) -> None:
        """Run the model's train step once on a 2-image batch, without updating anything, before the run directory
        exists: networks that build but cannot process images of data.image_size (a discriminator that shrinks them
        to nothing, a loss whose shapes disagree) fail here as one RecipeError instead of at the first step.

        Weights are not stepped; buffers (batch-norm statistics), the model's training state and every RNG are put
        back afterwards, so the run that follows is exactly the run without the probe.
        """
        from torch.utils.data import default_collate

        from ganzoo.errors import RecipeError

        groups = [g for g in self.dataset.indices_by_label() if g]
        local = distributed.check_batch(self.recipe.data.batch_size, self.dist.world_size)
        n = min(2, local)
        picks = []
        for k in range(n):  # one item of each domain in turn, as a real batch mixes them
            group = groups[k % len(groups)]
            picks.append(group[(k // len(groups)) % len(group)])
        rng_state = ckpt.capture_rng()
        training_state = self.model.training_state()
        nets = self.model.nets
        buffers = {role: [b.detach().clone() for b in net.buffers()] for role, net in nets.items()}
        modes = [(m, m.training) for net in nets.values() for m in net.modules()]
        running: list[str] = []  # the roles whose forward is in progress: the last one is where it failed

        def enter(role):
            def hook(module, args):
                running.append(role)
            return hook

        def leave(module, args, output):
            running.pop()  # returns None: a forward hook's return value would replace the output

        hooks = []
        for role, net in nets.items():
            hooks.append(net.register_forward_pre_hook(enter(role)))
            hooks.append(net.register_forward_hook(leave))
        ctx = _ProbeContext(self.device, self.precision, {}, None)
        try:
            batch = default_collate([self.model.training_item(self.dataset, i, random.Random(k)) for k, i in enumerate(picks)])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            self.model.current_step = 0
            self.model.train_step(batch, 0, ctx)
        except torch.OutOfMemoryError:
            raise self._out_of_memory("in a trial step on 2 images before training; nothing was written") from None
        except (RuntimeError, ValueError, IndexError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            reason = reason if len(reason) <= 240 else reason[:237] + "..."
            size, model = self.recipe.data.image_size, self.recipe.model
            if running:
                role = running[-1]
                where = (f"networks.{role} ({self.model.network_specs[role]['name']}) fails on {n} image(s) of "
                         f"{size}x{size} px ({reason})")
            else:
                where = f"the first training step fails on {n} image(s) of {size}x{size} px ({reason})"
            raise RecipeError(f"{self.recipe._source}: {model}: {where}; use a larger data.image_size or change the "
                              "networks' arguments (depth, layers) to fit it.") from None
        finally:
            for hook in hooks:
                hook.remove()
            with torch.no_grad():
                for role, net in nets.items():
                    for buf, saved in zip(net.buffers(), buffers[role]):
                        buf.copy_(saved)
            for module, training in modes:
                module.training = training
            for net in nets.values():
                net.zero_grad(set_to_none=True)
            self.model.load_training_state({k: v.cpu() for k, v in training_state.items()})
            ckpt.restore_rng(rng_state)

    def _has_checkpoint(self) -> bool:
        checkpoints = self.run_dir / "checkpoints"
        return (self.run_dir / "latest.json").is_file() or any((c / ckpt.CONFIG_NAME).is_file() for c in checkpoints.glob("step_*"))

    def _restore(self) -> None:
        folder = ckpt.resolve_model_folder(self.run_dir)
        loaded = ckpt.load_model(folder, device=self.device)
        for role, net in self.model.nets.items():
            net.load_state_dict(loaded.nets[role].state_dict())
        for role, net in self.model.ema_nets.items():
            net.load_state_dict(loaded.ema_nets[role].state_dict())
        state = ckpt.read_train_state(folder)
        for name, opt in self.optimizers.items():
            _load_optimizer_state(opt, state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        ckpt.restore_rng(state["rng"])
        self.model.load_training_state(state["model"])
        self.step = state["step"]
        # Drop log lines written after this checkpoint by the interrupted run (a kill can leave the last one cut short).
        log = self.run_dir / "metrics.jsonl"
        if log.exists() and self.dist.is_main:
            kept = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                    if (step := _log_step(line)) is not None and step <= self.step]
            ckpt.atomic_write_text(log, "".join(line + "\n" for line in kept))

    # ------------------------------------------------------------------ pieces of the loop

    def _loader(self) -> Iterator[dict[str, torch.Tensor]]:
        cfg, data = self.cfg, self.recipe.data
        sampler = StepSampler(self.dataset.indices_by_label(), data.batch_size, cfg.seed, self.step, cfg.steps,
                              rank=self.dist.rank, world_size=self.dist.world_size)
        loader = torch.utils.data.DataLoader(
            TrainItems(self.dataset, self.model),
            batch_sampler=sampler,
            num_workers=data.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if data.num_workers > 0 else None,
            # Its own generator: creating the iterator must not draw from the global RNG, or a resumed
            # run would see different random numbers from the uninterrupted one.
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        for batch in loader:
            yield {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def save_checkpoint(self) -> Path:
        state = {
            "step": self.step,
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "schedulers": {n: s.state_dict() for n, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": ckpt.capture_rng(),
            "model": self.model.training_state(),
        }
        for role, net in self.model.nets.items():
            if not bool(torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all()):  # one readback per net
                raise TrainingError(f"The {role} weights are not finite at step {self.step}; no checkpoint was written.")
        name = f"step_{self.step:08d}"
        if not self.dist.is_main:  # rank 0 writes; the others wait until the folder is complete
            distributed.barrier(self.dist)
            return self.run_dir / "checkpoints" / name
        folder = ckpt.write_model_folder(self.model, self.run_dir / "checkpoints" / name, step=self.step, train_state=state)
        ckpt.atomic_write_text(self.run_dir / "latest.json", json.dumps({"step": self.step, "path": f"checkpoints/{name}"}) + "\n")
        old = sorted(p for p in (self.run_dir / "checkpoints").glob("step_*") if p.name != name)
        for stale in old[: max(0, len(old) - (self.cfg.keep_checkpoints - 1))]:
            # Renamed out of sight first: a kill during the deletion leaves a hidden leftover, never a visible
            # step_* folder with half its files gone.
            hidden = stale.with_name(f".{stale.name}.stale-{os.getpid()}")
            os.replace(stale, hidden)
            shutil.rmtree(hidden, ignore_errors=True)
        distributed.barrier(self.dist)
        return folder

    def save_samples(self) -> Path:
        """The model's first still sheet (see :mod:`ganzoo.sheets`) as ``samples/step_XXXXXXXX.png`` + ``.json``."""
        from ganzoo.sheets import REFERENCE_KINDS, STILL_KINDS, SheetInputs, write_sheet

        val = self.val_dataset
        n = min(self.cfg.sample_count, len(val))
        groups = val.indices_by_label()
        # Fixed inputs across the run: one per domain in turn, always the same items.
        picks = []
        for k in range(n):
            group = groups[k % len(groups)] or groups[0]
            picks.append(group[(k // len(groups)) % len(group)])
        labels = torch.tensor([val.labels[i] for i in picks])
        names = [val.domains[int(y)] if labels.dim() == 1 else f"val {i}" for i, y in zip(picks, labels)]
        inputs = SheetInputs(torch.stack([val.load(i) for i in picks]), names, source_labels=labels, seed=self.cfg.seed, step=self.step)
        kind = next(k for k in self.model.sample_sheets if k in STILL_KINDS)
        if kind in REFERENCE_KINDS:  # references: the last item of each domain, usually not a source
            ref_picks = [(d, group[-1]) for d, group in enumerate(groups) if group]
            inputs.references = torch.stack([val.load(i) for _, i in ref_picks])
            inputs.reference_domains = [d for d, _ in ref_picks]
        path = self.run_dir / "samples" / f"step_{self.step:08d}.png"
        write_sheet(self.model, kind, inputs, path)
        return path

    # ------------------------------------------------------------------ the loop

    def run(self) -> RunResult:
        if not self.resume and (self.run_dir / "latest.json").exists():
            raise GanzooError(
                f"{self.run_dir} already holds a run; resume it with --resume {self.run_dir} or choose another --out."
            )
        self._setup()  # data and networks first: a bad recipe or data folder leaves no run directory behind
        try:
            return self._run()
        finally:
            distributed.shutdown(self.dist)

    def _run(self) -> RunResult:
        main = self.dist.is_main
        failure = None
        if main:
            try:
                self._prepare_run_dir()
            except GanzooError as exc:
                failure = exc
        # Under torchrun the other ranks learn of rank 0's failure here instead of waiting for it at a barrier.
        if distributed.any_rank(failure is not None, self.dist, self.device):
            raise failure or TrainingError(f"Rank 0 could not prepare the run directory {self.run_dir}; see its message.")
        if self.resume and self._has_checkpoint():
            self._restore()
        elif main:
            # A fresh run, or one killed before its first checkpoint (nothing to restore: it starts over, and the
            # log lines it wrote go).
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
            ckpt.atomic_write_text(self.run_dir / "recipe.yaml", self.recipe.to_yaml())
        cfg = self.cfg
        log_path = self.run_dir / "metrics.jsonl"
        last_ckpt: Path | None = None
        last_losses: dict[str, float] = {}
        interrupted = False
        start_step = self.step

        progress = self._progress()
        task = progress.add_task("train", total=cfg.steps, completed=self.step, losses="")
        pending: list[dict[str, torch.Tensor]] = []
        t0 = time.perf_counter()
        stop = _StopRequest()
        sampled_at = -1
        try:
            log_ctx = open(log_path, "a", encoding="utf-8") if main else contextlib.nullcontext()
            with stop, progress, log_ctx as log_file:
                for batch in self._loader():
                    self.model.current_step = self.step
                    with distributed.swapped(self.model, self.ddp_nets):
                        losses = self.model.train_step(batch, self.step, self.ctx)
                    self._step_schedulers()
                    if cfg.ema > 0:
                        for role, ema in self.model.ema_nets.items():
                            update_ema(ema, self.model.nets[role], cfg.ema)
                    self.step += 1
                    pending.append({k: v.detach() for k, v in losses.items()})
                    # Ctrl-C lets the step in hand finish, then checkpoints: the saved state is always a whole step.
                    # Under DDP the ranks agree on it at log intervals (one small collective there, none per step).
                    stopping = stop.requested
                    if self.dist.active:
                        at_log_step = self.step % cfg.log_every == 0 or self.step % cfg.checkpoint_every == 0
                        stopping = at_log_step and distributed.any_rank(stop.requested, self.dist, self.device)
                    at_ckpt = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps or stopping
                    at_log = self.step % cfg.log_every == 0 or at_ckpt
                    if at_log:
                        last_losses = self._flush_losses(pending, log_file, t0, start_step)
                        pending = []
                        progress.update(task, completed=self.step, losses=_fmt(last_losses))
                        if not self.console.is_terminal and not self.quiet and self.step % max(cfg.log_every, cfg.steps // 20) == 0:
                            self.console.print(f"step {self.step}/{cfg.steps} {_fmt(last_losses)}")
                    else:
                        progress.update(task, completed=self.step)
                    if cfg.sample_every and self.step % cfg.sample_every == 0:
                        if main:
                            self.save_samples()
                        sampled_at = self.step
                    if at_ckpt:
                        last_ckpt = self.save_checkpoint()
                    if stopping:
                        interrupted = True
                        break
        except torch.OutOfMemoryError:
            good = self._last_checkpoint()
            keep = f"the last checkpoint is {good}" if good else "no checkpoint had been written yet"
            raise self._out_of_memory(f"at step {self.step + 1}; {keep}") from None
        except KeyboardInterrupt:
            # A second Ctrl-C (or one outside the main thread): stop now, keep the last whole checkpoint.
            interrupted = True
            last_ckpt = self._last_checkpoint()
        if interrupted and main:
            where = f"the last checkpoint is {last_ckpt}" if last_ckpt else "no checkpoint was written"
            self.console.print(f"[yellow]Interrupted at step {self.step}; {where}. "
                               f"Continue with: ganzoo run --resume {self.run_dir}[/]", highlight=False)
        elif cfg.sample_every and sampled_at != self.step and main and not interrupted:
            self.save_samples()
        distributed.barrier(self.dist)
        return RunResult(self.run_dir, self.step, last_ckpt, last_losses, interrupted)

    def _last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder of this run, or None before the first one."""
        return ckpt.resolve_model_folder(self.run_dir) if (self.run_dir / "latest.json").exists() else None

    def _out_of_memory(self, when: str) -> TrainingError:
        local = distributed.check_batch(self.recipe.data.batch_size, self.dist.world_size)
        size = self.recipe.data.image_size
        remedies = ["lower data.batch_size or data.image_size"]
        if self.precision == "fp32":
            remedies.append("use train.precision=bf16")
        remedies.append(f"free memory on {self.device}")
        return TrainingError(
            f"Out of {'GPU' if self.device.type == 'cuda' else 'device'} memory {when} ({self.recipe.model}, batch "
            f"{local} of {size}x{size} px per process on {self.device}, {self.precision}); {', '.join(remedies[:-1])} "
            f"or {remedies[-1]}."
        )

    def _step_schedulers(self) -> None:
        # Schedules advance once per iteration for every optimiser, also where a model skipped one this
        # iteration (StarGAN v1 steps G every n_critic iterations): PyTorch's ordering warning does not apply.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for sched in self.schedulers.values():
                sched.step()

    def _flush_losses(self, pending, log_file, t0: float, start_step: int) -> dict[str, float]:
        stacked = {k: torch.stack([p[k].float() for p in pending if k in p]) for k in pending[-1]}
        # Under DDP: the mean over ranks (one collective per log interval), equal on every rank.
        values = {k: distributed.all_reduce_mean(v, self.dist).cpu() for k, v in stacked.items()}  # one host sync per log interval
        for k, v in values.items():
            if not torch.isfinite(v).all():
                if self.scaler is not None and self.scaler.get_scale() >= 1.0:
                    # fp16: a step whose scaled gradients overflowed (a penalty's gradient among them) is skipped
                    # by the grad scaler, which lowers its scale; only a scale driven below 1 means divergence.
                    continue
                good = self._last_checkpoint()
                keep = f"the last good checkpoint is {good}" if good else "no checkpoint had been written yet"
                raise TrainingError(
                    f"Loss {k} became {v[~torch.isfinite(v)][0].item()} by step {self.step}; training stopped and {keep}. "
                    "Lower optim.lr or use train.precision=fp32."
                )
        last = {k: _last_finite(v) for k, v in values.items()}
        elapsed = time.perf_counter() - t0
        record = {"step": self.step, **{f"loss/{k}": round(v, 6) if math.isfinite(v) else None for k, v in last.items()},
                  "it_per_s": round((self.step - start_step) / max(elapsed, 1e-9), 4)}
        if self.device.type == "cuda":  # read at log intervals only: no extra host sync per step
            record["peak_mem_mb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        if log_file is not None:
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
        return last

    def _progress(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _SpeedColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
            disable=self.quiet or not self.console.is_terminal,
            transient=False,
        )


class _StopRequest:
    """First Ctrl-C (SIGINT) asks the loop to stop after the current step; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _SpeedColumn:
    """Iterations per second of the rich task (blank until rich has a speed estimate)."""

    def __new__(cls):
        from rich.progress import ProgressColumn
        from rich.text import Text

        class Speed(ProgressColumn):
            def render(self, task):
                return Text(f"{task.speed:.2f} it/s" if task.speed else "-- it/s")

        return Speed()


class _ProbeContext(StepContext):
    """A StepContext whose updates do nothing: the probe runs the train step's forward passes only."""

    def optimize(self, loss: torch.Tensor, *roles: str) -> None:
        pass


def _load_optimizer_state(opt: torch.optim.Optimizer, saved: dict) -> None:
    """Load an optimiser's state but keep the implementation this process chose (fused or not): a checkpoint
    written on another device or by an older version names its own, and PyTorch's loader would take that."""
    chosen = [{k: g.get(k) for k in ("fused", "foreach")} for g in opt.param_groups]
    opt.load_state_dict(saved)
    for group, flags in zip(opt.param_groups, chosen):
        group.update(flags)
        if group.get("fused"):  # the fused kernels want the step counters on the parameters' device
            for p in group["params"]:
                state = opt.state.get(p, {})
                if torch.is_tensor(state.get("step")):
                    state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


def _last_finite(values: torch.Tensor) -> float:
    """The interval's last finite value (nan when it has none): the value shown and logged."""
    finite = values[torch.isfinite(values)]
    return float(finite[-1]) if len(finite) else math.nan


def _log_step(line: str) -> int | None:
    """The step of a metrics.jsonl line; None for a line cut short or otherwise unreadable."""
    try:
        step = json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return None
    return step if isinstance(step, int) else None


def _remove_leftovers(run_dir: Path) -> None:
    """Delete what a killed process left half-made: hidden temp checkpoint folders and temp files (never a
    visible checkpoint; those are only ever complete)."""
    for path in (run_dir / "checkpoints").glob(".step_*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in run_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)


def _human(num_bytes: float) -> str:
    if num_bytes < 1024:
        return f"{num_bytes:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        num_bytes /= 1024
        if num_bytes < 1024:
            break
    return f"{num_bytes:.1f} {unit}"


def _fmt(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in list(losses.items())[:6])


def default_run_dir(recipe_path: str | Path) -> Path:
    stem = Path(recipe_path).stem
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
