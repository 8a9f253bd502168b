"""The training-dynamics figure: checkpoints placed at their steps, and refused with fewer than two."""
import numpy as np
import pandas as pd
import pytest

from interplab.figures.dynamics import checkpoint_dynamics, checkpoint_positions
from interplab.teacher.config import revision_step


def test_revision_step_reads_the_step_a_name_stands_for():
    assert revision_step("step4", 300) == 4 and revision_step("step143000", None) == 143000
    assert revision_step("final", 300) == 300 and revision_step("final", None) is None
    assert revision_step("main", 300) is None


def test_positions_are_steps_when_every_checkpoint_has_one_else_config_order():
    x, by_step = checkpoint_positions(["step0", "step8", "final"], {"step0": 0, "step8": 8, "final": 40})
    assert by_step and x.tolist() == [0, 8, 40]
    x, by_step = checkpoint_positions(["step8", "main"], {"step8": 8, "main": None})
    assert not by_step and x.tolist() == [0, 1]


def metrics(ckpts):
    rows = [dict(ckpt=c, layer=layer, snapshot=s, alpha=0.9, dstar=10.0 + i, l0=5.0, f_unique=40.0,
                 ce_recovered_zero=np.nan)
            for i, c in enumerate(ckpts) for layer in (0, 1) for s in ("1k", "final")]
    return pd.DataFrame(rows)


def test_figure_written_with_its_pdf_twin(tmp_path):
    path = tmp_path / "dyn.png"
    checkpoint_dynamics(metrics(["step0", "step4", "final"]), {"step0": 0, "step4": 4, "final": 16}, "B", path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"


def test_one_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least two checkpoints"):
        checkpoint_dynamics(metrics(["final"]), {"final": 16}, "B", tmp_path / "dyn.png")
