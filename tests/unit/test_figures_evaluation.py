"""The Pareto figure draws from metrics tables with and without the splice columns."""
import json
import math

import pandas as pd
from PIL import Image

from interplab.figures.evaluation import pareto


def table(trial, ce=True):
    rows = [{"trial": trial, "ckpt": "final", "layer": layer, "snapshot": s, "tokens": t, "l0": 5.0 * (i + 1) + layer,
             "fvu": 0.3 / (i + 1), "ce_recovered_zero": (0.5 + 0.2 * i) if ce else math.nan}
            for layer in (0, 1) for i, (s, t) in enumerate([("100k", 100_000), ("final", 300_000)])]
    return pd.DataFrame(rows)


def test_pareto_with_ce(tmp_path):
    pareto({"A": table("A"), "B": table("B")}, tmp_path / "p.png", {"config": {"trials": ["A", "B"]}})
    image = Image.open(tmp_path / "p.png")
    assert image.size[0] > 800 and json.loads(image.text["Description"])["config"]["trials"] == ["A", "B"]


def test_pareto_without_an_lm(tmp_path):
    pareto({"A": table("A", ce=False)}, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
