"""`interplab`: small command-line views of the workflow's outputs (the workflow itself runs through
snakemake). `interplab summary <snapshot dir>` prints an SAE snapshot's cfg.json and its row of
results/kd/{trial}/metrics.csv, found from the snapshot's place in the results tree
(results/sae/{trial}/{model}/{ckpt}/L{LL}/{snapshot}/), so one command answers "what is this SAE and
how good is it" without opening two files. `interplab features <results/features/{trial}/L{LL}.json>`
prints the feature browser's latents with their top held-out contexts, the peak token in [[ ]].
Imports nothing heavy (no torch)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence


def snapshot_identity(snapshot_dir: Path) -> dict:
    """trial, model, ckpt, layer, snapshot and the results root, from results/sae/{trial}/{model}/{ckpt}/L{LL}/{snapshot}."""
    d = snapshot_dir.resolve()
    layer = d.parent.name
    if len(d.parents) < 6 or not (layer.startswith("L") and layer[1:].isdigit()) or d.parents[4].name != "sae":
        raise ValueError(f"{snapshot_dir} is not a snapshot directory results/sae/{{trial}}/{{model}}/{{ckpt}}/L{{LL}}/{{snapshot}}")
    return {"trial": d.parents[3].name, "model": d.parents[2].name, "ckpt": d.parents[1].name, "layer": int(layer[1:]),
            "snapshot": d.name, "results": d.parents[5]}


def summary(snapshot_dir: Path, metrics: Path | None = None, out=None) -> int:
    import pandas as pd

    out = out or sys.stdout

    cfg_path = snapshot_dir / "cfg.json"
    if not cfg_path.is_file():
        print(f"interplab summary: no cfg.json in {snapshot_dir}", file=sys.stderr)
        return 2
    cfg = json.loads(cfg_path.read_text())
    meta = dict(cfg.get("metadata", {}))
    meta.pop("provenance", None)  # long; cfg.json keeps it
    print(f"# {cfg_path}", file=out)
    print(json.dumps({**{k: v for k, v in cfg.items() if k != "metadata"}, "metadata": meta}, indent=2,
                     sort_keys=True, default=str), file=out)
    try:
        ident = snapshot_identity(snapshot_dir)
    except ValueError as error:
        print(f"\n(no metrics row: {error})", file=out)
        return 0
    table = metrics or ident["results"] / "kd" / ident["trial"] / "metrics.csv"
    if not table.is_file():
        print(f"\n(no metrics row: {table} not built yet: snakemake {table})", file=out)
        return 0
    frame = pd.read_csv(table, dtype={"snapshot": str})
    row = frame[(frame["model"] == ident["model"]) & (frame["ckpt"] == ident["ckpt"]) &
                (frame["layer"] == ident["layer"]) & (frame["snapshot"] == ident["snapshot"])]
    print(f"\n# {table}", file=out)
    if row.empty:
        print("(no row for this snapshot)", file=out)
        return 1
    print(row.iloc[0].to_string(), file=out)
    return 0


def features(path: Path, top: int, examples: int, out=None) -> int:
    """The first `top` latents of a feature-browser JSON, each with its `examples` best contexts."""
    out = out or sys.stdout
    if not path.is_file():
        print(f"interplab features: {path} not found: build it with `snakemake {path}`", file=sys.stderr)
        return 2
    record = json.loads(path.read_text())
    print(f"# {record['modelId']} {record['hook_name']} ({record['revision']}, trial {record['trial']}, "
          f"snapshot {record['snapshot']})", file=out)
    for feature in record["features"][:top]:
        print(f"\nlatent {feature['index']} ({feature['selected_as']}): E[z²] {feature['mean_sq']:.4g}, "
              f"fires on {100 * feature['frac_nonzero']:.3g}% of held-out tokens", file=out)
        for example in feature["activations"][:examples]:
            peak, tokens = example["maxValueTokenIndex"], example["tokens"]
            text = "".join(tokens[:peak]) + "[[" + tokens[peak] + "]]" + "".join(tokens[peak + 1:])
            print(f"  {example['maxValue']:8.3f}  {text!r}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interplab", description=__doc__.split("\n\n")[0].replace("\n", " "))
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("summary", help="an SAE snapshot's cfg.json and its KD / evaluation metrics row")
    show.add_argument("snapshot_dir", type=Path, help="results/sae/{trial}/{model}/{ckpt}/L{LL}/{snapshot}/")
    show.add_argument("--metrics", type=Path, default=None, help="metrics.csv to read (default: found from the path)")
    browse = commands.add_parser("features", help="top latents of a feature-browser JSON with their contexts")
    browse.add_argument("record", type=Path, help="results/features/{trial}/L{LL}.json")
    browse.add_argument("--top", type=int, default=5, help="latents to show (default 5)")
    browse.add_argument("--examples", type=int, default=3, help="contexts per latent (default 3)")
    args = parser.parse_args(argv)
    if args.command == "features":
        return features(args.record, args.top, args.examples)
    return summary(args.snapshot_dir, args.metrics)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
