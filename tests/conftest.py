"""Shared fixtures: the repository root, and a runner for Snakemake on a copy of the workflow."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_PARTS = ["Snakefile", "rules", "envs", "scripts", "configs", "report", "src", "config.yaml"]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matmuls run fastest on one thread, and the test suite shares its cores
    (use with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_workdir(dest: Path, overrides: dict | None = None) -> Path:
    """Copy the workflow into `dest` (results stay isolated) with a test config merged over config.yaml."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / part)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    # The test config replaces config.yaml outright: passing it with --configfile would deep-merge it
    # into config.yaml's, so mappings such as sae.trials would keep every default entry.
    (dest / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def run_snakemake(workdir: Path, *targets: str, extra: list[str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, *targets, "--cores", "2", *(extra or [])]
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def planned_jobs(workdir: Path, *targets: str, change=None) -> dict[str, int]:
    """Rule → number of jobs a dry run plans, after `change(config)` edits the workdir's config.yaml
    (restored afterwards). Snakemake reruns a job whose recorded params differ, so this shows exactly
    which jobs a config change affects."""
    path = workdir / "config.yaml"
    original = path.read_text()
    if change is not None:
        config = yaml.safe_load(original)
        change(config)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        proc = run_snakemake(workdir, *targets, extra=["-n"])
    finally:
        path.write_text(original)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:"):].splitlines()
    jobs = {}
    for line in table[3:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def assert_figure_drawn_from_current_tables(workdir: Path, png: str, figure: str | None) -> None:
    """A figure rule's PNG names its figure (None: a figure without a name in its config) and was drawn
    from the input tables now on disk: the provenance in its text metadata (interplab.figures.style.save)
    records each input's sha256. Its PDF twin (style.vector_path) exists and carries provenance too."""
    import json

    from PIL import Image

    from interplab.figures.style import vector_path
    from interplab.io import sha256_file

    recorded = json.loads(Image.open(workdir / png).text["Description"])
    pdf = vector_path(workdir / png).read_bytes()
    assert pdf.startswith(b"%PDF-") and b"/Subject (" in pdf, f"{png} has no PDF twin with provenance"
    assert recorded["config"].get("figure") == figure
    assert recorded["inputs"], f"{png} records no inputs"
    for name, entry in recorded["inputs"].items():
        assert sha256_file(workdir / entry["path"]) == entry["sha256"], f"{png}: input {name} changed since drawing"
