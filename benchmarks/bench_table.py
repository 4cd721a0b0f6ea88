"""README benchmark rows from ``ganzoo bench --json`` files, with the speed-up over the fp32 eager row.

    python benchmarks/bench_table.py RESULTS/*.json

Rows are grouped by (model, image size, batch, device); within a group the first fp32 row without
compile is the baseline of the "x fp32 eager" column (blank when the group has none).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def settings(r: dict) -> str:
    parts = [f"{r['img_size']} px", f"batch {r['batch']}", r["precision"]]
    if r["compile"]:
        parts.append("compiled")
    if r["channels_last"]:
        parts.append("channels_last")
    return ", ".join(parts)


def command(r: dict) -> str:
    flags = [f"--img-size {r['img_size']}", f"--batch {r['batch']}", f"--precision {r['precision']}",
             f"--device {r['device'].split(':')[0]}"]
    if r["compile"]:
        flags.append("--compile")
    if r["channels_last"]:
        flags.append("--set train.channels_last=true")
    return f"`ganzoo bench {r['model']} {' '.join(flags)} --steps {r['steps']}`"


def table(results: list[dict]) -> str:
    lines = ["| what | device | settings | train img/s | x fp32 eager | MFU | inference img/s | peak memory | command |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    key = lambda r: (r["model"], r["img_size"], r["batch"], r["device_name"])  # noqa: E731
    baselines = {}
    for r in results:
        if r["precision"] == "fp32" and not r["compile"] and not r["channels_last"]:
            baselines.setdefault(key(r), r["train_img_per_s"])
    for r in sorted(results, key=lambda r: (key(r), r["precision"] != "fp32", r["compile"], r["channels_last"])):
        base = baselines.get(key(r))
        speedup = f"{r['train_img_per_s'] / base:.2f}x" if base else ""
        mfu = f"{100 * r['mfu']:.1f}% of {r['peak_tflops']:g} TFLOP/s" if r.get("mfu") is not None else "n/a"
        lines.append(
            f"| `ganzoo bench {r['model']}` | {r['device_name']}, torch {r['torch']} | {settings(r)} | "
            f"{r['train_img_per_s']:.1f} | {speedup} | {mfu} | {r['infer_img_per_s']:.1f} | "
            f"{r['peak_mem_mb']:.0f} MiB | {command(r)} |"
        )
    return "\n".join(lines)


def main(paths: list[str]) -> int:
    results = []
    for path in paths:
        try:
            results.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"skipped {path}: {exc}", file=sys.stderr)
    if not results:
        print("no results: give the JSON files ganzoo bench --json wrote", file=sys.stderr)
        return 1
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
