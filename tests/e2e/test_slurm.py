"""The SLURM profile against a real one-node cluster (munged + slurmctld + slurmd on localhost).

slurm/start_local_cluster.sh installs Debian's slurm-wlm and munge when missing and starts the
daemons; the test is skipped only where that is impossible (not root, no apt).
"""
import shutil
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SNAKEMAKE, make_workdir, run_snakemake
from interplab.config import load_schema, validate_config
from interplab.grok.runs import modular_runs

TINY_TOY = {"stages": ["toy"], "toy": {"n_features": [8], "alphas": [0.8, 0.9], "n_seeds": 1, "n_widths": 3,
                                        "steps": 60, "batch_size": 32, "eval_samples": 500}}
# The local cluster has no accounting database: no account lookup, squeue for status, quick polling.
LOCAL_CLUSTER_FLAGS = ["--profile", "slurm", "--slurm-no-account", "--slurm-status-command", "squeue",
                       "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "5"]


@pytest.fixture(scope="module")
def slurm_cluster():
    proc = subprocess.run(["bash", str(ROOT / "slurm/start_local_cluster.sh")], capture_output=True, text=True)
    if proc.returncode == 3:
        pytest.skip(f"SLURM cannot be installed here: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"local SLURM cluster did not start:\n{proc.stdout}\n{proc.stderr}"
    return True


def _workdir(path: Path) -> Path:
    workdir = make_workdir(path, TINY_TOY)
    shutil.copytree(ROOT / "slurm", workdir / "slurm")
    return workdir


@pytest.mark.slurm
@pytest.mark.slow
def test_toy_target_runs_through_slurm(slurm_cluster, tmp_path):
    workdir = _workdir(tmp_path)
    run_snakemake(workdir, "results/toy/summary.csv", extra=LOCAL_CLUSTER_FLAGS)
    summary = pd.read_csv(workdir / "results/toy/summary.csv")
    assert sorted(summary["alpha"]) == [0.8, 0.9]
    # Both toy_run jobs went through sbatch: slurmctld still holds them (MinJobAge=300).
    records = subprocess.run(["scontrol", "show", "jobs"], capture_output=True, text=True).stdout.split("\n\n")
    ours = [r for r in records if f"WorkDir={workdir}" in r]
    for run in ("F8_a0.8_direct", "F8_a0.9_direct"):
        [job] = [r for r in ours if f"Comment=rule_toy_run_wildcards_{run}" in r]
        assert "JobState=COMPLETED" in job
    assert any((workdir / "results/logs/slurm").rglob("*.log")), "SLURM's own job logs are kept"


@pytest.mark.slurm
def test_gpu_rule_asks_slurm_for_a_gpu(slurm_cluster, tmp_path):
    """The real plugin builds the real sbatch line for a GPU rule; a stand-in `sbatch` records it (the
    one-node test cluster has no GPU to grant, so the job itself is not run)."""
    workdir = _workdir(tmp_path / "wf")
    shim = tmp_path / "bin"
    shim.mkdir()
    record = tmp_path / "sbatch_args.txt"
    (shim / "sbatch").write_text(f'#!/bin/sh\ncat > /dev/null\necho "$@" >> {record}\necho "no GPU here" >&2\nexit 1\n')
    (shim / "sbatch").chmod(0o755)
    config = validate_config(yaml.safe_load((workdir / "config.yaml").read_text()), load_schema(ROOT / "configs/schema.yaml"))
    modular_run = next(iter(modular_runs(config["grok"])))  # a GPU rule with no inputs: submitted first
    env_path = f"{shim}:{os.environ['PATH']}"
    proc = subprocess.run([SNAKEMAKE, f"results/grok/runs/{modular_run}/manifest.json", *LOCAL_CLUSTER_FLAGS,
                           "--retries", "0"], cwd=workdir, capture_output=True, text=True,
                          env={**os.environ, "PATH": env_path, "PYTHONPATH": str(workdir / "src")})
    assert proc.returncode != 0
    line = record.read_text()
    assert "--gpus=1" in line, line
    assert f"rule_grok_modular_wildcards_{modular_run}" in line
