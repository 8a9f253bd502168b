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


def test_features_prints_each_latents_contexts_with_the_peak_marked(tmp_path, capsys):
    record = {"modelId": "tiny", "hook_name": "blocks.1.hook_resid_post", "revision": "final", "trial": "B",
              "snapshot": "final", "features": [
                  {"index": 7, "selected_as": "top E[z²]", "mean_sq": 2.0, "frac_nonzero": 0.25, "maxActValue": 3.0,
                   "activations": [{"tokens": ["def", " f", "(x"], "values": [0.0, 3.0, 1.0], "maxValue": 3.0,
                                    "maxValueTokenIndex": 1, "row": 5}]},
                  {"index": 9, "selected_as": "random alive", "mean_sq": 0.1, "frac_nonzero": 0.01,
                   "maxActValue": 0.0, "activations": []}]}
    path = tmp_path / "L01.json"
    path.write_text(json.dumps(record))
    assert main(["features", str(path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "latent 7 (top E[z²])" in out and "'def[[ f]](x'" in out and "latent 9" not in out
    assert main(["features", str(tmp_path / "missing.json")]) == 2
