"""Every SAE figure renders a non-empty PNG and its PDF from small tidy tables of the documented shape;
the figures that plot values plot the right ones (the final snapshot per layer, each layer in token
order); and every variant keeps the honesty policies: the shared colour scale (equal numbers, equal
shades; constant columns neutral; small spreads not stretched), no interpolation across cells, no
correlation on fewer than 8 layers, readable ticks, and comparison axes that do not magnify."""
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from interplab.figures import sae as figs
from interplab.figures import scales, style


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
    assert out.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


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
    panels = [ax for ax in drawn[1].axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == [f"layer {layer}" for layer in range(4)]  # one panel per layer
    for ax, layer in zip(panels, range(4)):
        floors = data.floors[(data.floors["layer"] == layer) & (data.floors["snapshot"] == "final")]
        curve, dstar = ax.lines
        assert curve.get_xdata().tolist() == [1, 4, 16, 64]
        assert curve.get_ydata().tolist() == pytest.approx((floors["floor_refined"] / 4.0).tolist())  # / total mass
        assert dstar.get_xdata()[0] == pytest.approx(final["dstar"].iloc[layer])
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


# --- the colour-scale policy ---------------------------------------------------------------------------


def test_scale_equal_printed_values_get_equal_levels():
    shade = scales.levels([2.7201, 2.7249, 2.7180, 3.10], "{:.2f}")  # the first three all print 2.72
    assert shade[0] == shade[1] == shade[2] and shade[3] > shade[0]


def test_scale_constant_column_is_neutral_not_low():
    assert np.isnan(scales.levels([0.991, 0.9912, 0.9909], "{:.3f}")).all()
    assert np.isnan(scales.levels([0, 0, 0], "{:.0f}")).all()


def test_scale_does_not_stretch_small_relative_differences():
    shade = scales.levels([374.0, 375.1, 376.7], "{:.1f}")  # 0.7%: a few shades around the middle
    assert 0.4 < shade.min() < shade.max() < 0.6
    wide = scales.levels([10.0, 20.0, 40.0], "{:.1f}")  # a factor of 4 uses the whole palette
    assert wide.min() == 0 and wide.max() == 1


def heatmap_shades(fig) -> np.ma.MaskedArray:
    """The per-cell levels a heatmap figure drew (its one layer × metric AxesImage)."""
    (image,) = [im for ax in fig.axes for im in ax.get_images()]
    assert image.get_interpolation() == "nearest"  # discrete cells, never blurred
    return image.get_array()


HEATMAPS = ["layer_metric_heatmap", "premium_heatmap", "professional_heatmap", "layer_analysis_heatmap",
            "gradient_heatmap", "dashboard"]


@pytest.mark.parametrize("name", HEATMAPS)
def test_heatmaps_follow_the_scale_policy(drawn, name):
    data = tables()
    final = data.metrics["snapshot"] == "final"
    data.metrics.loc[final, "dstar"] = [374.0, 374.8, 375.9, 376.7]  # 0.7% spread
    data.metrics.loc[final, "g_alpha"] = [2.7201, 2.7249, 2.7180, 3.10]  # three print as 2.72
    figs.PER_TRIAL[name](data, "unused.png")
    shades = heatmap_shades(drawn[0])
    column = {c: i for i, (c, _, _) in enumerate(figs.METRICS)}
    dstar, g = shades[:, column["dstar"]], shades[:, column["g_alpha"]]
    assert 0.4 < dstar.min() and dstar.max() < 0.6
    assert g[0] == g[1] == g[2] < g[3]
    words = " ".join(ax.get_xlabel() for ax in drawn[0].axes).split()
    assert "grey: the column is constant." in " ".join(words)  # every variant says how it is shaded


def test_constant_column_drawn_neutral(drawn):
    data = tables()
    figs.premium_heatmap(data, "unused.png")
    shades = heatmap_shades(drawn[0])
    dead = [c for c, _, _ in figs.METRICS].index("dead")
    assert not np.ma.getmaskarray(shades)[:, dead].any()  # dead varies over layers in the fixture
    data.metrics["dead"] = 7
    figs.premium_heatmap(data, "unused.png")
    assert np.ma.getmaskarray(heatmap_shades(drawn[1]))[:, dead].all()


# --- the other variants ----------------------------------------------------------------------------------


def test_correlation_needs_eight_layers(drawn):
    figs.correlation_heatmap(tables(n_layers=4), "unused.png")
    assert not [im for ax in drawn[0].axes for im in ax.get_images()]  # no ρ from 4 points
    assert "fewer than the 8" in drawn[0].axes[0].get_title()
    figs.correlation_heatmap(tables(n_layers=8), "unused.png")
    (image,) = drawn[1].axes[0].get_images()
    assert image.get_array().shape[0] >= 2 and image.norm.vmin == -1


def test_small_multiples_are_shares_of_the_largest_layer(drawn):
    data = tables()
    final = data.metrics["snapshot"] == "final"
    data.metrics.loc[final, "fvu"] = [0.545, 0.561, 0.550, 0.548]
    figs.all_layers_small_multiples(data, "unused.png")
    fvu = [i for i, (c, _, _) in enumerate(figs.METRICS) if c == "fvu"][0]
    heights = [ax.patches[fvu].get_height() for ax in drawn[0].axes if ax.patches]
    assert heights == pytest.approx([0.545 / 0.561, 1.0, 0.550 / 0.561, 0.548 / 0.561])
    assert all(ax.get_ylim()[0] == 0 for ax in drawn[0].axes if ax.patches)


def test_metric_landscape_draws_no_surface(drawn):
    figs.metric_landscape(tables(), "unused.png")
    axes = drawn[0].axes
    assert len(axes) == len(figs.METRICS)
    assert not any(isinstance(c, matplotlib.contour.ContourSet) for ax in axes for c in ax.collections)
    assert not [im for ax in axes for im in ax.get_images()]
    assert all(line.get_xdata().tolist() == [0, 1, 2, 3] for ax in axes for line in ax.lines)  # layers only


def test_narrow_ranges_get_linear_axes_and_tokens_read_as_k(drawn):
    data = tables()
    data.log["tokens"] *= 1000  # 200k … 1M
    data.log["l0"] = 450 + 70 * (data.log["tokens"] / data.log["tokens"].max())  # 450–520: not a decade
    data.log["mse"] = 10.0 ** -(data.log["tokens"] / 200_000)  # 0.1 … 1e-5: five decades
    figs.training_curves(data, "unused.png")
    panels = dict(zip(["mse", "l1_penalty", "loss", "l0", "lambda", "frac_alive"], drawn[0].axes))
    assert panels["l0"].get_yscale() == "linear" and panels["mse"].get_yscale() == "log"
    drawn[0].canvas.draw()
    labels = [t.get_text() for t in panels["l0"].get_xticklabels() if t.get_text()]
    assert any(label.endswith("k") for label in labels) and not any("×" in label or "e" in label for label in labels)


def test_count_label_labels():
    assert [style.count_label(v) for v in (0, 500, 100_000, 1_500_000, 2e9)] == ["0", "500", "100k", "1.5M", "2B"]


def test_value_axis_log_only_across_a_decade():
    fig, ax = plt.subplots()
    style.value_axis(ax, [450, 520])
    assert ax.get_yscale() == "linear"
    style.value_axis(ax, [8, 512])
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_compare_trials_axes_and_references(drawn):
    metrics = {t: tables(seed=i).metrics for i, t in enumerate("ABC")}
    figs.compare_trials(metrics, "unused.png", target_l0={"C": 8})
    panels = dict(zip(["l0", "alpha", "dstar", "mse", "dead"], drawn[0].axes))
    assert panels["alpha"].get_ylim() == (0.0, 1.0)
    assert panels["dstar"].get_ylim()[0] == 0 and panels["dead"].get_ylim()[0] == 0  # counts from zero
    references = {round(line.get_ydata()[0], 3) for line in panels["alpha"].lines if line.get_linestyle() == "--"}
    assert references == {0.81, 0.94, 0.994}  # the paper's α per trial, as config.yaml documents it
    assert [line.get_ydata()[0] for line in panels["l0"].lines if line.get_linestyle() == ":"] == [8]


def test_save_writes_png_and_pdf_with_provenance(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    out = tmp_path / "f.png"
    style.save(fig, out, {"figure": "f", "inputs": {"a": 1}})
    assert json.loads(Image.open(out).text["Description"]) == {"figure": "f", "inputs": {"a": 1}}
    pdf = out.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and b'/Subject ({"figure": "f", "inputs": {"a": 1}})' in pdf
    assert b"CreationDate" not in pdf  # same figure, same bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]  # no temporary files left
