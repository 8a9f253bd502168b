"""Every SAE figure renders a non-empty PNG from small tidy tables of the documented shape, and the
figures that plot values plot the right ones (the final snapshot per layer, each layer in token order)."""
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


@pytest.fixture
def drawn(monkeypatch):
    """The figures as drawn (not as PNG bytes): style.save is replaced by a recorder."""
    from interplab.figures import style

    figures = []
    monkeypatch.setattr(style, "save", lambda fig, path, provenance=None: figures.append(fig))
    yield figures
    import matplotlib.pyplot as plt

    for fig in figures:
        plt.close(fig)


def test_figures_plot_the_final_snapshot_values(drawn):
    data = tables()
    final = data.metrics[data.metrics["snapshot"] == "final"].sort_values("layer")
    figs.kd_quantities(data, "unused.png")
    for ax, (column, _) in zip(drawn[0].axes, figs.KD_TRIO):
        assert ax.lines[0].get_ydata().tolist() == pytest.approx(final[column].tolist()), column
    figs.predicted_floor(data, "unused.png")
    floor_lines = [line for line in drawn[1].axes[0].lines if len(line.get_xdata()) > 1]
    for line, layer in zip(floor_lines, range(4)):
        floors = data.floors[(data.floors["layer"] == layer) & (data.floors["snapshot"] == "final")]
        assert line.get_xdata().tolist() == [1, 4, 16, 64]
        assert line.get_ydata().tolist() == pytest.approx((floors["floor_refined"] / 4.0).tolist())  # / total mass
    figs.l0_vs_mse(data, "unused.png")
    points = drawn[2].axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(points), final[["l0", "mse"]].to_numpy())


def test_training_curves_plot_each_layer_in_token_order(drawn):
    data = tables()
    shuffled = figs.TrialTables(data.trial, data.metrics, data.floors, data.log.sample(frac=1.0, random_state=0))
    figs.training_curves(shuffled, "unused.png")
    for ax, column in zip(drawn[0].axes, ["mse", "l1_penalty", "loss", "l0", "lambda", "frac_alive"]):
        for layer, line in enumerate(ax.lines):
            expected = data.log[data.log["layer"] == layer].sort_values("tokens")
            assert line.get_xdata().tolist() == expected["tokens"].tolist()
            assert line.get_ydata().tolist() == pytest.approx(expected[column].tolist()), (column, layer)
