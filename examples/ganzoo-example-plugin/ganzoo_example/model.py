"""A tiny conditional GAN: enough to show every hook a model implements."""

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.api import GANModel, StrictModel


class TinyGenerator(nn.Module):
    def __init__(self, num_domains: int = 2, width: int = 8):
        super().__init__()
        self.embed = nn.Embedding(num_domains, 3)
        self.body = nn.Sequential(nn.Conv2d(6, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1), nn.Tanh())

    def forward(self, x, y):
        label = self.embed(y)[:, :, None, None].expand_as(x)
        return self.body(torch.cat([x, label], 1))


class TinyDiscriminator(nn.Module):
    def __init__(self, num_domains: int = 2, width: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, num_domains, 4, 2, 1))

    def forward(self, x, y):
        return self.body(x).mean((2, 3)).gather(1, y[:, None]).squeeze(1)


class TinyLosses(StrictModel):
    adv: float = 1.0


class TinyConditionalGAN(
    GANModel,
    license="mit",
    # "small" is what `ganzoo compare` and `ganzoo bench` start from; there are no paper widths, so no "official"
    recipes={"small": "tiny_cgan_gradients"},
    # shrinks "small" to test size: the contract tests (tests/test_contract.py) train every model from it
    tiny={"data.batch_size": 2, "data.count": 8, "networks.generator.width": 4, "networks.discriminator.width": 4},
):
    """Translate by conditioning a small generator on the target domain (LSGAN)."""

    network_roles = {"generator": "tiny_cgan.generator", "discriminator": "tiny_cgan.discriminator"}
    ema_roles = ("generator",)
    derived_network_args = {"generator": ("num_domains",), "discriminator": ("num_domains",)}
    LossConfig = TinyLosses

    def derived_kwargs(self, role):
        return {"num_domains": len(self.domains)}

    def train_step(self, batch, step, ctx):
        G, D = self.nets["generator"], self.nets["discriminator"]
        x, y = batch["x"], batch["y"]
        target = torch.randint(0, len(self.domains), y.shape, device=y.device)
        fake = G(x, target)
        d_loss = F.mse_loss(D(x, y), torch.ones_like(y, dtype=x.dtype)) + F.mse_loss(D(fake.detach(), target), torch.zeros_like(y, dtype=x.dtype))
        ctx.optimize(d_loss, "discriminator")
        g_loss = self.losses.adv * F.mse_loss(D(fake, target), torch.ones_like(y, dtype=x.dtype))
        ctx.optimize(g_loss, "generator")
        return {"D": d_loss.detach(), "G": g_loss.detach()}

    @torch.no_grad()
    def translate(self, images, target, *, reference=None, z=None, generator=None):
        return self.inference_nets()["generator"](images, target)

    def export_graphs(self):
        """What ``ganzoo export`` writes: the generator, the target domain an input (optional; see CONTRIBUTING.md)."""
        from ganzoo.api import ExportGraph, TensorSpec

        return [ExportGraph(
            name="generator", module=self.inference_nets()["generator"],
            inputs=(TensorSpec("image", ("batch", 3, "height", "width"), "image", "source images"),
                    TensorSpec("domain", ("batch",), "index", "target domain index", high=len(self.domains))),
            output=TensorSpec("translated", ("batch", 3, "height", "width"), "image", "translated images"),
            description="G(image, domain)", spatial="dynamic", multiple_of=1, min_size=4,
            reference=lambda image, domain: self.translate(image, domain))]
