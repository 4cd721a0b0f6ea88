"""Named weight sets of this package's families, registered under the ``pretrained`` kind (``ganzoo list --pretrained``).

Plain data, so listing the zoo imports nothing heavy. Official download links are the ones the upstream
repositories use (see their download scripts); Dropbox links end in dl=1 so they return the file. ``sha256``
None means no hash is published: the first download records it and warns. Citations are the family's own.
"""

WEIGHTS = {
    "stargan_v2.celeba_hq": {
        "description": "StarGAN v2, CelebA-HQ 256x256, female/male (EMA networks; runs without the FAN face masks); official release.",
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
