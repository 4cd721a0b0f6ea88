"""StarGAN v2's official weight sets, registered under ``pretrained`` (fields: ``ganzoo.api.PretrainedEntry``).

Plain data, so ``ganzoo list --pretrained`` imports nothing heavy. The URLs are the upstream download scripts' own.
"""

WEIGHTS = {
    "stargan_v2.celeba_hq": {
        "description": "StarGAN v2, CelebA-HQ 256x256, female/male (EMA networks and the FAN that makes its face masks); official release.",
        "url": "https://www.dropbox.com/s/96fmei6c93o8b8t/100000_nets_ema.ckpt?dl=1",
        "sha256": None,
        "converter": "stargan_v2",
        "options": {"domains": ["female", "male"]},
        "license": "cc-by-nc-4.0",
        "datasets": ["celeba_hq"],
        "upstream": "https://github.com/clovaai/stargan-v2",
    },
    "stargan_v2.afhq": {
        "description": "StarGAN v2, AFHQ 256x256, cat/dog/wild (EMA networks); official release.",
        "url": "https://www.dropbox.com/s/etwm810v25h42sn/100000_nets_ema.ckpt?dl=1",
        "sha256": None,
        "converter": "stargan_v2",
        "options": {"domains": ["cat", "dog", "wild"]},
        "license": "cc-by-nc-4.0",
        "datasets": ["afhq"],
        "upstream": "https://github.com/clovaai/stargan-v2",
    },
}
