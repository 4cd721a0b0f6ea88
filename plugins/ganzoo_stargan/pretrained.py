"""StarGAN v1's official weight sets, registered under ``pretrained`` (fields: ``ganzoo.api.PretrainedEntry``).

Plain data, so ``ganzoo list --pretrained`` imports nothing heavy. The URLs are the upstream download scripts' own
(Dropbox links end in dl=1 so they return the file); sha256 None: none is published, the first download
records it and warns. The family's citation comes from its model class.
"""

WEIGHTS = {
    "stargan.celeba_128": {
        "description": "StarGAN v1, CelebA 128x128, five attributes (Black/Blond/Brown hair, Male, Young); official release.",
        "url": "https://www.dropbox.com/s/7e966qq0nlxwte4/celeba-128x128-5attrs.zip?dl=1",
        "sha256": None,
        "archive_members": ["200000-G.ckpt", "200000-D.ckpt"],
        "converter": "stargan",
        "options": {"image_size": 128},
        "license": "mit",
        "datasets": ["celeba"],
        "upstream": "https://github.com/yunjey/stargan",
    },
    "stargan.celeba_256": {
        "description": "StarGAN v1, CelebA 256x256, five attributes; official release.",
        "url": "https://www.dropbox.com/s/zdq6roqf63m0v5f/celeba-256x256-5attrs.zip?dl=1",
        "sha256": None,
        "archive_members": ["200000-G.ckpt", "200000-D.ckpt"],
        "converter": "stargan",
        "options": {"image_size": 256},
        "license": "mit",
        "datasets": ["celeba"],
        "upstream": "https://github.com/yunjey/stargan",
    },
}
