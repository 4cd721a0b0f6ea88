"""MUNIT's official weight sets (fields: ``ganzoo.api.PretrainedEntry``): none registered, on purpose.

The official releases (edges2shoes, edges2handbags, summer2winter Yosemite, ...: a ``{'a': gen_a, 'b': gen_b}``
state dict each, e.g. ``edges2shoes.pt``) are published only inside a Google Drive *folder*
(NVlabs/MUNIT USAGE.md). ``ganzoo pull`` downloads one URL with a plain HTTP GET, and a Drive folder link
answers with an HTML page, not a file, so an entry with that link could never be pulled. Download a file from
the folder by hand and convert it:

    ganzoo convert munit edges2shoes.pt --domains edges,shoes --image-size 256 OUT_DIR

Weights and code are CC BY-NC-SA 4.0 (non-commercial, share-alike); converted weights keep that licence.
Plain data, so ``ganzoo list --pretrained`` imports nothing heavy.
"""

#: registered under ``pretrained`` (empty: see above)
WEIGHTS: dict[str, dict] = {}

#: what is known about the official releases, for people converting them by hand (not registered)
OFFICIAL_RELEASES = {
    "munit.edges2shoes": {"file": "edges2shoes.pt", "options": {"domains": ["edges", "shoes"]}, "datasets": ["edges2shoes"]},
    "munit.edges2handbags": {"options": {"domains": ["edges", "handbags"]}, "datasets": ["edges2handbags"]},
    "munit.summer2winter_yosemite": {"options": {"domains": ["summer", "winter"]}, "datasets": ["summer2winter_yosemite"]},
}
FOLDER_URL = "https://drive.google.com/drive/folders/10IEa7gibOWmQQuJUIUOkh-CV4cm6k8__?usp=sharing"
LICENSE = "cc-by-nc-sa-4.0"
UPSTREAM = "https://github.com/NVlabs/MUNIT"
