"""Every SAE figure renders a non-empty PNG from small tidy tables of the documented shape."""
import numpy as np
import pandas as pd
import pytest

from interplab.figures import sae as figs


def tables(n_layers: int = 4, snapshots=("s1", "final"), ckpts=("final",), seed: int = 0) -> figs.TrialTables:
    rng = np.random.default_rng(seed)
    rows, floors, log = [], [], []
    for ckpt in ckpts:
        for layer in range(n_layers):
            for k, snapshot in enumerate(snapshots):
                l0 = 20 + 10 * layer + rng.uniform(0, 5)
                alive = 200 - 5 * layer
                alpha = 1 - l0 / alive
                g = 1 / ((1 - alpha) * np.log(1 / (1 - alpha)))
                rows.append({"ckpt": ckpt, "layer": layer, "snapshot": snapshot, "tokens": 1000 * (k + 1),
                             "n_latents": 256, "f_alive": alive, "dead": 256 - alive, "l0": l0, "alpha": alpha,
                             "g_alpha": g, "dstar": alive / g, "mse": 0.01 * (layer + 1), "fvu": 0.1 + 0.02 * layer,
                             "total_mass": 4.0})
                for d in (1, 4, 16, 64):
                    floors.append({"ckpt": ckpt, "layer": layer, "snapshot": snapshot, "d_student": d,
                                   "floor_refined": 4.0 / d, "floor_naive": max(0.0, 4.0 * (1 - d * g / alive))})
            for step in range(1, 6):
                log.append({"layer": layer, "tokens": 200 * step, "mse": 0.1 / step, "l1_penalty": 0.01 / step,
                            "loss": 0.11 / step, "l0": 50 / step, "lambda": 1e-3, "frac_alive": 1 - 0.01 * step})
    return figs.TrialTables("B", pd.DataFrame(rows), pd.DataFrame(floors), pd.DataFrame(log))


@pytest.mark.parametrize("name", sorted(figs.PER_TRIAL))
def test_per_trial_figure_renders(tmp_path, name):
    out = tmp_path / f"{name}.png"
    figs.PER_TRIAL[name](tables(), out, {"test": True})
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 5_000


def test_metric_vs_tokens_with_two_checkpoints(tmp_path):
    out = tmp_path / "m.png"
    figs.metric_vs_tokens(tables(ckpts=("step1000", "final")), out)
    assert out.stat().st_size > 5_000


def test_compare_trials(tmp_path):
    out = tmp_path / "compare.png"
    figs.compare_trials({t: tables(seed=i).metrics for i, t in enumerate("ABC")}, out)
    assert out.stat().st_size > 5_000


def test_final_rows_picks_last_snapshot():
    rows = figs.final_rows(tables().metrics[lambda d: d.ckpt == "final"])
    assert list(rows["snapshot"]) == ["final"] * 4 and list(rows["layer"]) == [0, 1, 2, 3]
