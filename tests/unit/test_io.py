import os
import stat

import pandas as pd
import pytest

from interplab import io


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_atomic_path_gives_umask_mode(tmp_path):
    target = tmp_path / "out.txt"
    with io.atomic_path(target) as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_tables_round_trip_with_provenance(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    for name in ("t.parquet", "t.csv"):
        io.write_table(tmp_path / name, frame, {"config": {"k": 1}})
        pd.testing.assert_frame_equal(io.read_table(tmp_path / name), frame)
        assert io.read_provenance(tmp_path / name) == {"config": {"k": 1}}
    with pytest.raises(ValueError, match="use .parquet or .csv"):
        io.write_table(tmp_path / "t.txt", frame)


def test_stable_seed_is_stable():
    assert io.stable_seed("a", 1) == io.stable_seed("a", 1) != io.stable_seed("a", 2)
    assert 0 <= io.stable_seed("x") < 2**63
