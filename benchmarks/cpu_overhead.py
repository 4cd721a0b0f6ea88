"""Per-iteration CPU time: ganzoo's trainer step vs a plain fp32 eager loop of the official solver.

Both sides use the same networks (official layout and channel widths, at a smaller image size
so CPU iterations take seconds), the same batch and the same Adam settings; the plain StarGAN v2
loop's copies compute their blocks in the official order (conv, then pool; interpolate, then conv),
so what our blocks compute with fewer operations counts as ours. The plain loops are
written the way the official code does it. StarGAN v2: every optimiser zeroed before each
backward, the parameter gradients of networks it does not step computed anyway, the diversity
term's second image computed with a graph and detached, EMA by a Python loop over parameters.
CycleGAN: forward, G step with D frozen (set_requires_grad), D step on the fresh fakes (no
pool: its cost is negligible). StarGAN v1: the critic step every iteration (fake computed with
G's graph and detached, WGAN-GP on one interpolate), the generator step every n_critic-th
iteration, gradients of both networks zeroed before each backward. Ours is the trainer's
iteration (model.train_step + schedules + EMA), exactly what `ganzoo run` executes.

    python benchmarks/cpu_overhead.py [--model stargan_v2|cyclegan|stargan] [--img-size 64] [--batch 2] [--iters 4]

StarGAN v1 iterations are timed in blocks of n_critic (one G step per block), so --iters counts blocks.

Prints the mean seconds per iteration of each and the ratio ours / plain (target <= 1.0), and the FLOPs of one
iteration of each (``torch.utils.flop_counter``: convolutions and matmuls, forward and backward): their ratio is the
floor the time ratio can reach by doing less work, so the rest is how fast each side runs that work.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
import types

import torch
import torch.nn.functional as F


def plain_official_step(nets, opts, ema_nets, batch, latent_dim, lambdas, beta=0.999):
    G, Fm, E, D = nets["generator"], nets["mapping_network"], nets["style_encoder"], nets["discriminator"]
    x, y, x_ref, x_ref2, y_trg = batch["x"], batch["y"], batch["x_ref"], batch["x_ref2"], batch["y_ref"]
    z = torch.randn(x.shape[0], latent_dim)
    z2 = torch.randn(x.shape[0], latent_dim)

    def reset():
        for o in opts.values():
            o.zero_grad()

    def d_loss(style_fn):
        x_real = x.clone().requires_grad_()
        out = D(x_real, y)
        loss_real = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        grad = torch.autograd.grad(out.sum(), x_real, create_graph=True)[0]
        reg = 0.5 * grad.pow(2).reshape(x.shape[0], -1).sum(1).mean()
        with torch.no_grad():
            fake = G(x_real, style_fn(0))
        out = D(fake, y_trg)
        loss_fake = F.binary_cross_entropy_with_logits(out, torch.zeros_like(out))
        return loss_real + loss_fake + lambdas["r1"] * reg

    def g_loss(style_fn):
        s_trg = style_fn(0)
        fake = G(x, s_trg)
        out = D(fake, y_trg)
        adv = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        sty = (E(fake, y_trg) - s_trg).abs().mean()
        fake2 = G(x, style_fn(1)).detach()
        ds = (fake - fake2).abs().mean()
        rec = G(fake, E(x, y))
        cyc = (rec - x).abs().mean()
        return adv + lambdas["sty"] * sty - lambdas["ds"] * ds + lambdas["cyc"] * cyc

    latent = lambda k: Fm((z, z2)[k], y_trg)
    reference = lambda k: E((x_ref, x_ref2)[k], y_trg)
    for style in (latent, reference):
        loss = d_loss(style)
        reset()
        loss.backward()
        opts["discriminator"].step()
    loss = g_loss(latent)
    reset()
    loss.backward()
    for role in ("generator", "mapping_network", "style_encoder"):
        opts[role].step()
    loss = g_loss(reference)
    reset()
    loss.backward()
    opts["generator"].step()
    for role, ema in ema_nets.items():
        for p, p_ema in zip(nets[role].parameters(), ema.parameters()):
            p_ema.data = torch.lerp(p.data, p_ema.data, beta)


def official_block_forward(resblk, x):
    """The official ResBlk: conv1x1 then pool in the shortcut, conv3x3 then pool in the residual."""
    sc = resblk.conv1x1(x) if resblk.learned_shortcut else x
    sc = F.avg_pool2d(sc, 2) if resblk.downsample else sc
    h = resblk.norm1(x) if resblk.normalize else x
    h = resblk.conv1(F.leaky_relu(h, 0.2))
    h = F.avg_pool2d(h, 2) if resblk.downsample else h
    h = resblk.norm2(h) if resblk.normalize else h
    return (sc + resblk.conv2(F.leaky_relu(h, 0.2))) / math.sqrt(2)


def official_adain_block_forward(block, x, s):
    """The official AdainResBlk: interpolate, then conv1x1 in the shortcut; interpolate before conv1."""
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest") if block.upsample else t  # noqa: E731
    h = block.conv1(up(F.leaky_relu(block.norm1(x, s), 0.2)))
    out = block.conv2(F.leaky_relu(block.norm2(h, s), 0.2))
    if block.w_hpf == 0:
        sc = up(x)
        out = (out + (block.conv1x1(sc) if block.learned_shortcut else sc)) / math.sqrt(2)
    return out


def use_official_block_forwards(nets) -> None:
    """The plain loop's StarGAN v2 networks compute their blocks in the official order, so what ganzoo's blocks do
    differently (the same function computed with fewer operations) counts as ours, not as both sides'."""
    from ganzoo_stargan_v2.networks import AdainResBlk, ResBlk

    for net in nets.values():
        for module in net.modules():
            if isinstance(module, ResBlk):
                module.forward = types.MethodType(official_block_forward, module)
            elif isinstance(module, AdainResBlk):
                module.forward = types.MethodType(official_adain_block_forward, module)


def plain_cyclegan_step(nets, opts, batch, lambda_a=10.0, lambda_b=10.0, lambda_idt=0.5):
    G_ab, G_ba, D_a, D_b = nets["generator_a2b"], nets["generator_b2a"], nets["discriminator_a"], nets["discriminator_b"]
    real_a, real_b = batch["a"], batch["b"]
    lsgan = lambda pred, real: F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
    fake_b, fake_a = G_ab(real_a), G_ba(real_b)
    rec_a, rec_b = G_ba(fake_b), G_ab(fake_a)
    for d in (D_a, D_b):
        d.requires_grad_(False)
    opts["generators"].zero_grad()
    idt_a, idt_b = G_ab(real_b), G_ba(real_a)
    loss_g = (lsgan(D_b(fake_b), True) + lsgan(D_a(fake_a), True)
              + lambda_a * (rec_a - real_a).abs().mean() + lambda_b * (rec_b - real_b).abs().mean()
              + lambda_idt * (lambda_b * (idt_a - real_b).abs().mean() + lambda_a * (idt_b - real_a).abs().mean()))
    loss_g.backward()
    opts["generators"].step()
    for d in (D_a, D_b):
        d.requires_grad_(True)
    opts["discriminators"].zero_grad()
    for d, real, fake in ((D_a, real_a, fake_a), (D_b, real_b, fake_b)):
        loss_d = 0.5 * (lsgan(d(real), True) + lsgan(d(fake.detach()), False))
        loss_d.backward()
    opts["discriminators"].step()


def plain_stargan_step(nets, opts, batch, iteration, num_domains, lambdas, n_critic):
    G, D = nets["generator"], nets["discriminator"]
    x_real, label_org = batch["x"], batch["y"]
    label_trg = label_org[torch.randperm(x_real.shape[0])]
    c_org, c_trg = F.one_hot(label_org, num_domains).float(), F.one_hot(label_trg, num_domains).float()

    def reset_grad():
        opts["generator"].zero_grad()
        opts["discriminator"].zero_grad()

    out_src, out_cls = D(x_real)
    d_loss_real = -torch.mean(out_src)
    d_loss_cls = F.cross_entropy(out_cls, label_org)
    x_fake = G(x_real, c_trg)
    out_src, _ = D(x_fake.detach())
    d_loss_fake = torch.mean(out_src)
    alpha = torch.rand(x_real.size(0), 1, 1, 1)
    x_hat = (alpha * x_real.data + (1 - alpha) * x_fake.data).requires_grad_(True)
    out_src, _ = D(x_hat)
    dydx = torch.autograd.grad(out_src, x_hat, torch.ones_like(out_src), retain_graph=True, create_graph=True)[0]
    d_loss_gp = torch.mean((torch.sqrt(torch.sum(dydx.view(dydx.size(0), -1) ** 2, dim=1)) - 1) ** 2)
    d_loss = d_loss_real + d_loss_fake + lambdas["cls"] * d_loss_cls + lambdas["gp"] * d_loss_gp
    reset_grad()
    d_loss.backward()
    opts["discriminator"].step()
    if (iteration + 1) % n_critic == 0:
        x_fake = G(x_real, c_trg)
        out_src, out_cls = D(x_fake)
        g_loss = (-torch.mean(out_src) + lambdas["cls"] * F.cross_entropy(out_cls, label_trg)
                  + lambdas["rec"] * torch.mean(torch.abs(x_real - G(x_fake, c_org))))
        reset_grad()
        g_loss.backward()
        opts["generator"].step()


RECIPES = {
    "stargan": lambda a: {
        "model": "stargan",
        "networks": {"generator": {"conv_dim": 64, "repeat_num": 6}, "discriminator": {"conv_dim": 64, "repeat_num": 6}},
        "data": {"name": "shapes", "image_size": a.img_size, "batch_size": a.batch, "num_train": 64, "num_val": 4},
        "train": {"steps": 10**6, "sample_every": 0, "device": "cpu", "ema": 0.0},
    },
    "stargan_v2": lambda a: {
        "model": "stargan_v2",
        "networks": {"generator": {"dim_in": 64, "max_conv_dim": 512, "w_hpf": 0},
                     "style_encoder": {"dim_in": 64, "max_conv_dim": 512},
                     "discriminator": {"dim_in": 64, "max_conv_dim": 512}},
        "data": {"name": "shapes", "image_size": a.img_size, "batch_size": a.batch, "num_train": 64, "num_val": 4},
        "train": {"steps": 10**6, "sample_every": 0, "device": "cpu"},
    },
    "cyclegan": lambda a: {
        "model": "cyclegan",
        "networks": {
            "generator_a2b": {"name": "cyclegan.resnet_generator", "ngf": 64, "n_blocks": 9, "norm": "instance"},
            "generator_b2a": {"name": "cyclegan.resnet_generator", "ngf": 64, "n_blocks": 9, "norm": "instance"},
            "discriminator_a": {"name": "cyclegan.nlayer_discriminator", "ndf": 64, "n_layers": 3, "norm": "instance"},
            "discriminator_b": {"name": "cyclegan.nlayer_discriminator", "ndf": 64, "n_layers": 3, "norm": "instance"},
        },
        "losses": {"pool_size": 0},
        "data": {"name": "shapes", "domains": ["red", "blue"], "image_size": a.img_size, "batch_size": a.batch,
                 "num_train": 64, "num_val": 4},
        "train": {"steps": 10**6, "sample_every": 0, "device": "cpu"},
    },
}


def setup(args):
    """The trainer as ``ganzoo run`` builds it for ``args.model`` (RECIPES), one batch, and the plain loop's own
    copies of the same networks and of their moving averages."""
    from ganzoo.recipe import recipe_from_dict
    from ganzoo.trainer import Trainer

    doc = RECIPES[args.model](args)
    doc["train"]["compile"] = getattr(args, "compile", False)
    trainer = Trainer(recipe_from_dict(doc), "/nonexistent-unused", quiet=True)
    trainer._setup()
    model = trainer.model
    batch = next(iter(trainer._loader()))
    nets = {r: copy.deepcopy(n) for r, n in model.nets.items()}
    ema = {r: copy.deepcopy(n) for r, n in model.ema_nets.items()}
    return trainer, model, batch, nets, ema


def trainer_iteration(trainer, batch):
    """One iteration of ours: model.train_step, the schedules and the EMA update, as the trainer runs them."""
    from ganzoo.trainer import update_ema

    model = trainer.model

    def iteration():
        model.train_step(batch, trainer.step, trainer.ctx)
        trainer._step_schedulers()
        for role, e in model.ema_nets.items():
            update_ema(e, model.nets[role], trainer.cfg.ema)
        trainer.step += 1

    return iteration


def plain_stargan_v2(model, batch, nets, ema):
    """The plain StarGAN v2 iteration on the copies ``nets`` / ``ema``: fresh Adam optimisers with the same
    settings, blocks in the official order (checked to give our outputs before anything is timed)."""
    adam = dict(betas=tuple(model.optim.betas), weight_decay=model.optim.weight_decay)
    opts = {r: torch.optim.Adam(n.parameters(), lr=model.learning_rate(r), **adam) for r, n in nets.items()}
    lambdas = {"r1": model.losses.r1, "sty": model.losses.sty, "ds": model.losses.ds, "cyc": model.losses.cyc}
    use_official_block_forwards(nets)
    use_official_block_forwards(ema)
    with torch.no_grad():  # the same functions: the same images and logits, to float rounding
        s = model.nets["style_encoder"](batch["x_ref"], batch["y_ref"])
        for role, args_ in (("generator", (batch["x"], s)), ("discriminator", (batch["x"], batch["y"]))):
            torch.testing.assert_close(nets[role](*args_), model.nets[role](*args_), rtol=1e-4, atol=1e-4)
    return lambda: plain_official_step(nets, opts, ema, batch, model.latent_dim, lambdas)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(RECIPES), default="stargan_v2")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--compile", action="store_true", help="ours with train.compile=true (compile time not in the mean)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    trainer, model, batch, nets, ema = setup(args)
    adam = dict(betas=tuple(model.optim.betas), weight_decay=model.optim.weight_decay)
    if args.model == "cyclegan":
        opts = {"generators": torch.optim.Adam([*nets["generator_a2b"].parameters(), *nets["generator_b2a"].parameters()],
                                               lr=model.optim.lr, **adam),
                "discriminators": torch.optim.Adam([*nets["discriminator_a"].parameters(), *nets["discriminator_b"].parameters()],
                                                   lr=model.optim.lr, **adam)}
        plain = lambda: plain_cyclegan_step(nets, opts, batch, model.losses.cycle_a, model.losses.cycle_b, model.losses.identity)
    elif args.model == "stargan":
        opts = {r: torch.optim.Adam(n.parameters(), lr=model.learning_rate(r), **adam) for r, n in nets.items()}
        lambdas = {"cls": model.losses.cls, "rec": model.losses.rec, "gp": model.losses.gp}
        n_critic = model.optim.n_critic
        counter = {"i": 0}

        def plain():
            for _ in range(n_critic):
                plain_stargan_step(nets, opts, batch, counter["i"], len(model.domains), lambdas, n_critic)
                counter["i"] += 1
    else:
        plain = plain_stargan_v2(model, batch, nets, ema)

    one_iteration = trainer_iteration(trainer, batch)

    def ours():
        for _ in range(model.optim.n_critic if args.model == "stargan" else 1):
            one_iteration()

    from ganzoo.bench import flop_counter

    started = time.perf_counter()
    ours()  # warm-up (allocator, first-call costs; compiling with --compile)
    warmup_ours = time.perf_counter() - started
    plain()
    times = {"ours": [], "plain": []}
    for _ in range(args.iters):  # interleaved, so load on the machine affects both alike
        for name, fn in (("ours", ours), ("plain", plain)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    flops = {}
    for name, fn in (("ours", ours), ("plain", plain)):  # after the timed loop: the counter's overhead stays out
        with flop_counter() as flop_mode:  # not `counter`: StarGAN v1's plain loop counts its iterations in that
            fn()
        flops[name] = flop_mode.get_total_flops()
    result = {k: sum(v) / len(v) for k, v in times.items()}
    result["ratio_ours_over_plain"] = result["ours"] / result["plain"]
    result.update({"gflop_ours": flops["ours"] / 1e9, "gflop_plain": flops["plain"] / 1e9,
                   "flop_ratio_ours_over_plain": flops["ours"] / flops["plain"]})
    result.update({"model": args.model, "img_size": args.img_size, "batch": args.batch, "iters": args.iters, "threads": torch.get_num_threads(),
                   "widths": "official", "compile": args.compile, "ours_warmup_s": round(warmup_ours, 1)})
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
