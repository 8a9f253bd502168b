"""`interplab summary`: a snapshot's cfg and its metrics row, found from the results layout."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from interplab.cli import main, snapshot_identity


@pytest.fixture
def results(tmp_path):
    snap = tmp_path / "results/sae/B/tiny/final/L01/final"
    snap.mkdir(parents=True)
    (snap / "cfg.json").write_text(json.dumps({"d_in": 4, "d_sae": 8, "metadata": {"trial": "B", "provenance": {"x": 1}}}))
    rows = [{"trial": "B", "model": "tiny", "ckpt": "final", "layer": layer, "snapshot": s, "l0": 10 * layer + i,
             "ce_recovered_zero": 0.5} for layer in (0, 1) for i, s in enumerate(["100k", "final"])]
    (tmp_path / "results/kd/B").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "results/kd/B/metrics.csv", index=False)
    return snap


def test_summary_prints_cfg_and_the_snapshots_row(results, capsys):
    assert main(["summary", str(results)]) == 0
    out = capsys.readouterr().out
    assert '"d_sae": 8' in out and "provenance" not in out
    row = dict(line.split(maxsplit=1) for line in out.split("metrics.csv\n")[1].splitlines())
    assert (row["layer"], row["snapshot"], row["l0"], row["ce_recovered_zero"]) == ("1", "final", "11", "0.5")


def test_identity_from_the_path(results):
    ident = snapshot_identity(results)
    assert (ident["trial"], ident["model"], ident["ckpt"], ident["layer"], ident["snapshot"]) == ("B", "tiny", "final", 1, "final")
    with pytest.raises(ValueError, match="not a snapshot directory"):
        snapshot_identity(results.parent)


def test_help_works():
    proc = subprocess.run([sys.executable, "-m", "interplab.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "summary" in proc.stdout
