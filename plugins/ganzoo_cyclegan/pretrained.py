"""Named weight sets of this package's families, registered under the ``pretrained`` kind (``ganzoo list --pretrained``).

Plain data, so listing the zoo imports nothing heavy. Official download links are the ones the upstream
repositories use (see their download scripts); Dropbox links end in dl=1 so they return the file. ``sha256``
None means no hash is published: the first download records it and warns. Citations are the family's own.
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
