"""UNIT's pretrained weight sets: none registered.

The official repository (mingyuliutw/UNIT) publishes one pretrained model, gta2cityscape, as a Google Drive link
only (TUTORIAL.md), which cannot be fetched and checked reliably; ganzoo registers no weights it cannot verify.
A downloaded ``gen_*.pt`` converts with ``ganzoo convert unit gen_00500000.pt [dis_00500000.pt] OUT``.
"""

WEIGHTS: dict[str, dict] = {}
