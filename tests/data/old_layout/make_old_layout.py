"""Run with the ganzoo of commit c287df4: tiny run directories of every family in the layout that version wrote."""
import json, subprocess, sys
from pathlib import Path
import torch
from safetensors.torch import save_file

OUT = Path(sys.argv[1])
TINY = {
    "stargan": ("stargan_shapes", {"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 3,
                "networks.generator.conv_dim": 8, "networks.generator.repeat_num": 1,
                "networks.discriminator.conv_dim": 8, "networks.discriminator.repeat_num": 2}),
    "stargan_v2": ("quickstart", {"data.image_size": 16, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
                   "networks.generator.dim_in": 8, "networks.generator.max_conv_dim": 16,
                   "networks.style_encoder.dim_in": 8, "networks.style_encoder.max_conv_dim": 16,
                   "networks.discriminator.dim_in": 8, "networks.discriminator.max_conv_dim": 16,
                   "networks.mapping_network.hidden_dim": 16}),
    "cyclegan": ("cyclegan_shapes", {"data.image_size": 16, "networks.discriminator_a.n_layers": 1, "networks.discriminator_b.n_layers": 1, "data.batch_size": 2, "data.num_train": 6, "data.num_val": 2,
                 "networks.generator_a2b.ngf": 4, "networks.generator_b2a.ngf": 4,
                 "networks.generator_a2b.n_blocks": 1, "networks.generator_b2a.n_blocks": 1,
                 "networks.discriminator_a.ndf": 4, "networks.discriminator_b.ndf": 4}),
    "pix2pix": ("pix2pix_shapes", {"data.image_size": 32, "data.num_train": 4, "data.num_val": 2, "networks.generator.ngf": 2,
                "networks.generator.num_downs": 5, "networks.discriminator.ndf": 4, "networks.discriminator.n_layers": 1}),
}
for family, (recipe, sets) in TINY.items():
    if (OUT / family).exists():
        continue
    run = OUT / family
    args = [sys.executable, "-m", "ganzoo", "run", f"recipes/{recipe}.yaml", "--out", str(run), "-q",
            "--set", "train.steps=1", "--set", "train.checkpoint_every=1", "--set", "train.sample_every=0",
            "--set", "train.log_every=1", "--set", "data.num_workers=0"]
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    subprocess.run(args, check=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    import ganzoo
    model = ganzoo.load(str(run))
    size = model.image_size
    x = torch.linspace(-1, 1, 3 * size * size).reshape(1, 3, size, size)
    index = len(model.sheet_targets()) - 1
    y = model.translate_to(x, index, generator=torch.Generator().manual_seed(0))
    save_file({"input": x.contiguous(), "output": y.contiguous()}, str(run / "expected_translation.safetensors"))
    (run / "expected_translation.json").write_text(json.dumps({"index": index, "written_by": "ganzoo 0.1.0 at c287df4"}) + "\n")
