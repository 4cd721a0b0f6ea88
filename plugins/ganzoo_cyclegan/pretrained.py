"""CycleGAN and pix2pix's official weight sets, registered under ``pretrained`` (fields: ``ganzoo.api.PretrainedEntry``).

Plain data, so ``ganzoo list --pretrained`` imports nothing heavy. The URLs are the upstream download scripts' own.
"""

WEIGHTS = {
    "cyclegan.horse2zebra": {
        "description": "CycleGAN horse -> zebra generator (one direction, resnet_9blocks, 256x256); official release.",
        "url": "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth",
        "sha256": None,
        "converter": "cyclegan",
        "options": {"domains": ["horse", "zebra"]},
        "license": "bsd-3-clause",
        "datasets": ["horse2zebra"],
        "upstream": "https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix",
    },
    "pix2pix.facades_label2photo": {
        "description": "pix2pix facades label -> photo generator (unet_256, 256x256); official release.",
        "url": "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth",
        "sha256": None,
        "converter": "pix2pix",
        "options": {"domains": ["label", "photo"]},
        "license": "bsd-3-clause",
        "datasets": ["facades"],
        "upstream": "https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix",
    },
}
