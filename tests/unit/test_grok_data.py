"""The synthetic fixture is real WILDS Camelyon17 to the wilds loader; bad roots fail clearly."""
import numpy as np
import pytest

from interplab.grok import data
from interplab.grok.fixture import FixtureConfig, fixture_metadata, write_fixture

TINY = FixtureConfig(n_per_hospital=20, image_size=16, id_val_fraction=0.2)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wilds")
    write_fixture(root, TINY)
    return root


def test_fixture_loads_through_wilds_with_metadata_and_splits(root):
    dataset = data.load_camelyon17(root)
    assert len(dataset) == 5 * 20
    assert dataset.metadata_fields[:3] == ["hospital", "slide", "y"]
    hospitals = dataset.metadata_array[:, 0].numpy()
    assert sorted(set(hospitals)) == [0, 1, 2, 3, 4]
    # WILDS official scheme: hospital 1 is OOD validation, 2 is OOD test; 0, 3, 4 split train / id_val.
    assert len(dataset.get_subset("train")) == 3 * 16
    assert len(dataset.get_subset("id_val")) == 3 * 4
    assert len(dataset.get_subset("val")) == 20 and len(dataset.get_subset("test")) == 20
    x, y, meta = dataset[0]
    assert x.size == (16, 16) and x.mode == "RGB" and int(y) == int(meta[2])
    assert 0.4 <= dataset.y_array.float().mean().item() <= 0.6


def test_split_indices_sizes_and_seeded_subsample(root):
    dataset = data.load_camelyon17(root)
    cfg = data.SplitConfig(root_dir=str(root), max_eval=15)
    a = data.split_indices(dataset, cfg, n_train=30, seed=0)
    assert len(a["train"]) == 30 and len(a["id"]) == 12 and len(a["ood"]) == 15  # ood capped at max_eval
    hospitals = dataset.metadata_array[:, 0].numpy()
    assert set(hospitals[a["train"]]) <= {0, 3, 4} and set(hospitals[a["ood"]]) == {2}
    assert not set(a["train"]) & set(a["id"])
    np.testing.assert_array_equal(a["train"], data.split_indices(dataset, cfg, 30, seed=0)["train"])
    assert not np.array_equal(a["train"], data.split_indices(dataset, cfg, 30, seed=1)["train"])
    np.testing.assert_array_equal(a["ood"], data.split_indices(dataset, cfg, 30, seed=1)["ood"])


def test_load_splits_decodes_images(root):
    sets = data.load_splits(data.SplitConfig(root_dir=str(root)), n_train=10, seed=0)
    train = sets["train"]
    assert train.images.shape == (10, 3, 16, 16) and train.images.dtype.is_floating_point is False
    assert train.labels.shape == (10,) and set(train.hospitals.tolist()) <= {0, 3, 4}


def test_missing_root_names_path_and_how_to_get_data(tmp_path):
    with pytest.raises(data.DatasetMissingError) as info:
        data.load_camelyon17(tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "camelyon17_v1.0") in message
    assert "download=True" in message and "grok.data.root_dir" in message


def test_incomplete_root_names_missing_file(tmp_path):
    (tmp_path / "camelyon17_v1.0" / "patches").mkdir(parents=True)
    (tmp_path / "camelyon17_v1.0" / "metadata.csv").write_text("")
    with pytest.raises(data.DatasetMissingError, match="RELEASE_v1.0.txt"):
        data.load_camelyon17(tmp_path)


def test_bad_split_requests_fail_clearly(root):
    dataset = data.load_camelyon17(root)
    with pytest.raises(ValueError, match="n_train 500 exceeds"):
        data.split_indices(dataset, data.SplitConfig(root_dir=str(root)), n_train=500, seed=0)
    with pytest.raises(ValueError, match="also in grok.data.train_hospitals"):
        data.SplitConfig(root_dir=str(root), ood_hospital=3)


def test_stain_shortcut_tracks_label_only_in_shortcut_hospitals(root):
    sets = data.load_splits(data.SplitConfig(root_dir=str(root), train_hospitals=(0, 3, 4), ood_hospital=2), 48, 0)

    def darkness_gap(s):
        darkness = 255 - s.images.float().mean(dim=(1, 2, 3))
        return (darkness[s.labels == 1].mean() - darkness[s.labels == 0].mean()).item()

    # Tumour patches are darker everywhere (nuclei), far more so where the stain shortcut applies.
    assert darkness_gap(sets["train"]) > 2 * darkness_gap(sets["ood"]) > 0


@pytest.mark.parametrize("heldout", [-1.0, 0.0, 1.0])
def test_stain_label_agreement_follows_the_configured_strengths(heldout):
    cfg = FixtureConfig(n_per_hospital=400, shortcut_strength=0.8, heldout_shortcut_strength=heldout,
                        shortcut_hospitals=(0, 3, 4))
    meta = fixture_metadata(cfg)
    agree = (meta["stain_sign"] == 2 * meta["tumor"] - 1).groupby(meta["center"]).mean()
    assert agree[[0, 3, 4]].to_numpy() == pytest.approx(0.9, abs=0.05)
    assert agree[[1, 2]].to_numpy() == pytest.approx((1 + heldout) / 2, abs=0.06)


def test_heldout_shortcut_strength_out_of_range_fails():
    with pytest.raises(ValueError, match="heldout_shortcut_strength"):
        FixtureConfig(heldout_shortcut_strength=-1.5)
