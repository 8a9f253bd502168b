"""DVC round trip through a real local-directory remote: repro → push → wipe → pull, then Snakemake is content."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, make_workdir, run_snakemake

BIN = Path(sys.executable).parent
TINY_TOY = {"stages": ["toy"], "toy": {"n_features": [8], "alphas": [0.9], "n_seeds": 1, "n_widths": 3, "steps": 60,
                                        "batch_size": 32, "eval_samples": 500}}


def _run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_push_wipe_pull_round_trip(tmp_path):
    repo = make_workdir(tmp_path / "repo", TINY_TOY)
    for part in ["dvc.yaml", ".dvcignore", "Makefile"]:
        shutil.copy(ROOT / part, repo / part)
    shutil.copytree(ROOT / ".dvc", repo / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "PYTHONPATH": str(repo / "src"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    dvc = str(BIN / "dvc")
    _run(["git", "init", "-q"], repo, env)
    _run([dvc, "remote", "modify", "--local", "storage", "url", str(tmp_path / "remote")], repo, env)  # as README says

    make = ["make", f"VENV={BIN.parent}", "STAGES=toy"]
    refused = subprocess.run([*make, "pull"], cwd=repo, env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "no dvc.lock" in refused.stderr, "a clone without dvc.lock is told why"

    _run([*make, "push"], repo, env)
    assert (repo / "dvc.lock").exists()
    before = {family: _digests(repo / family) for family in ["results/toy", "results/figures/toy"]}
    assert before["results/toy"] and before["results/figures/toy"]

    # A fresh clone: no results, no DVC cache, no Snakemake metadata.
    for path in ["results", ".dvc/cache", ".snakemake"]:
        shutil.rmtree(repo / path, ignore_errors=True)
    _run([*make, "pull"], repo, env)  # dvc pull toy, then snakemake --touch (dvc keeps no mtimes)
    after = {family: _digests(repo / family) for family in before}
    assert after == before, "every pulled file is byte-identical"
    proc = run_snakemake(repo, "all", extra=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr
