"""Every SAE export loads in the real SAELens, with its metadata, and encodes like interplab's own module.

sae-lens pins transformer-lens < 4 while the project runs 4.x, so SAELens gets a venv of its own:
`python -m venv`, a .pth file that appends the project venv's site-packages (torch, transformers,
safetensors, … come from there, after the venv's own packages, so its transformer-lens 3.x wins),
then `pip install --no-deps` of sae-lens, the transformer-lens it accepts, and the three small
packages they import that the project venv lacks. pip never removes packages outside its own
environment, so the project venv is untouched (checked below). The venv is cached under
~/.cache/interplab/, keyed by the sae-lens version, the project interpreter and the pins below.
Measured on the shared 2-core box (load average 8–10): building the venv 6.6–12.8 s cold (with or
without pip's download cache), under 1 ms warm; the whole test 38–47 s cold, 25–34 s warm.
A failed install fails the test with pip's output: a skip would hide that nothing was checked.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from interplab import kd, publish
from interplab.activations import hook_name
from interplab.sae import L1Policy, SAETrainer, TrainConfig, load_sae
from interplab.sae.export import SAELENS_VERSION, export_run, pt_name, saelens_usage, write_sparsity
from interplab.synthetic import InMemorySource

# The newest transformer-lens that sae-lens 6.54.12 accepts (it requires >=2.16.1,<4.0.0), and what
# `import sae_lens` needs beyond the project venv (found by importing until nothing was missing).
TRANSFORMER_LENS = "3.9.0"
MISSING = ["better-abc==0.0.3", "simple-parsing==0.1.9", "docstring-parser==0.18.0"]
MODEL = {"source": "hf", "name": "EleutherAI/pythia-70m", "context_length": 64,
         "corpus": {"source": "hf", "dataset": "monology/pile-uncopyrighted"}}
LAYERS, SNAPSHOTS = (0, 1), ("1280", "final")

# Runs in the SAELens venv: load every folder from disk and, for the hub folder's, also from a hub
# repo (the card's one-liner, the download served from the local folder); write what SAELens made of it.
LOADER = r"""
import json, sys
from importlib.metadata import version
from pathlib import Path
import torch
from huggingface_hub.errors import EntryNotFoundError
from safetensors.torch import load_file, save_file
import sae_lens
from sae_lens import SAE
from sae_lens.loading import pretrained_sae_loaders

hub, out = Path(sys.argv[1]), Path(sys.argv[2])
x = load_file(str(out / "x.safetensors"))["x"]

def local_download(repo_id, filename, **kwargs):
    path = hub / filename
    if not path.is_file():
        raise EntryNotFoundError(filename)
    return str(path)

pretrained_sae_loaders.hf_hub_download = local_download
report = {"sae_lens": sae_lens.__version__, "transformer_lens": version("transformer-lens"), "saes": {}}
for i, folder in enumerate(json.loads(sys.argv[3])):
    disk = SAE.load_from_disk(folder)
    repo_sae, sparsity = disk, None
    if hub in Path(folder).parents:
        repo_sae, _, sparsity = SAE.from_pretrained_with_cfg_and_sparsity("me/saes", str(Path(folder).relative_to(hub)))
    meta = disk.cfg.metadata
    report["saes"][folder] = {
        "architecture": disk.cfg.architecture(), "d_in": disk.cfg.d_in, "d_sae": disk.cfg.d_sae,
        **{k: meta[k] for k in ("hook_name", "model_name", "sae_lens_version", "context_size", "dataset_path",
                                "prepend_bos", "model_from_pretrained_kwargs", "trial", "snapshot")},
        "sparsity_shape": None if sparsity is None else list(sparsity.shape),
    }
    with torch.no_grad():
        tensors = {"disk": disk.encode(x), "repo": repo_sae.encode(x)}
    save_file({**tensors, **({"sparsity": sparsity} if sparsity is not None else {})}, str(out / f"{i}.safetensors"))
(out / "report.json").write_text(json.dumps(report))
"""


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", *args],
                          capture_output=True, text=True)
    assert proc.returncode == 0, (f"could not install {' '.join(args)} into the SAELens venv (needs the package "
                                  f"index):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def _build(venv: Path, project: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "zz_interplab_project_venv.pth").write_text(f"{project}\n")  # appended: the venv's own come first
    _pip(venv / "bin/python", f"sae-lens=={SAELENS_VERSION}", f"transformer-lens=={TRANSFORMER_LENS}", *MISSING)
    (venv / "complete").write_text(f"{sys.executable}\n{project}\n")


def saelens_venv() -> Path:
    """The SAELens venv's python, built on first use (beside the cache entry, then moved in, so a
    failed or concurrent build never leaves a half venv behind) and reused while its key matches."""
    project = Path(sysconfig.get_path("purelib", vars={"base": sys.prefix, "platbase": sys.prefix}))
    key = hashlib.sha256(f"{os.path.realpath(sys.executable)}|{project}|{TRANSFORMER_LENS}|{MISSING}".encode()).hexdigest()
    venv = Path.home() / ".cache" / "interplab" / f"saelens-{SAELENS_VERSION}-{key[:12]}"
    if not (venv / "complete").is_file():
        building = venv.with_name(f"{venv.name}.build-{os.getpid()}")
        try:
            _build(building, project)
            if not venv.exists():  # else another run finished first: use its venv
                building.rename(venv)  # a venv's python finds its prefix from pyvenv.cfg beside it: the move is safe
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return venv / "bin" / "python"


def _export_trial(root: Path) -> tuple[Path, torch.Tensor]:
    """Train a tiny SAE per layer, export it, measure its held-out density and assemble the hub folder,
    through the functions the workflow's scripts call."""
    generator = torch.Generator().manual_seed(0)
    files, rows = {}, []
    for layer in LAYERS:
        train, heldout = torch.randn(8192, 16, generator=generator) * 3 + 1, torch.randn(1024, 16, generator=generator) * 3 + 1
        cfg = TrainConfig(d_in=16, d_sae=32, l1=L1Policy("sum", 1e-3), training_tokens=256 * 10, batch_size=256,
                          snapshot_tokens=(1280,), b_pre_init_tokens=256, normalize_tokens=256, buffer_tokens=512)
        run = SAETrainer(cfg, InMemorySource(train), root / f"work{layer}").train()
        base = root / "sae" / "B" / "pythia-70m" / "step1000"
        dirs = {s: base / f"L{layer:02d}" / s for s in SNAPSHOTS}
        pts = {s: base / pt_name(layer, s) for s in SNAPSHOTS}
        metadata = {**saelens_usage(MODEL, "step1000"), "revision": "step1000", "hook_name": hook_name(layer),
                    "layer": layer, "trial": "B"}
        export_run(root / f"work{layer}", run.snapshots, dirs, pts, metadata)
        measured = kd.measure_many({s: load_sae(dirs[s]) for s in SNAPSHOTS}, heldout.split(256))
        for snapshot, metrics in measured.items():
            sparsity = root / "kd" / f"L{layer:02d}" / f"{snapshot}.sparsity.safetensors"
            write_sparsity(sparsity, torch.tensor(metrics.firing_frequency))
            files[(layer, snapshot)] = publish.SnapshotFiles(dirs[snapshot], pts[snapshot], sparsity)
            rows.append({"ckpt": "step1000", "layer": layer, "snapshot": snapshot, **metrics.scalars()})
    table = pd.DataFrame(rows)
    card = publish.TrialCard(trial="B", model_name=MODEL["name"], base_model=MODEL["name"],
                             dataset=MODEL["corpus"]["dataset"], revision="step1000", hook="blocks.{L}.hook_resid_post",
                             layers=list(LAYERS), d_in=16, d_sae=32, l1_policy="fixed", training_tokens=2560,
                             snapshots=list(SNAPSHOTS), metrics=table[table["snapshot"] == "final"])
    hub = publish.assemble(card, files, table, root / "hub", repo_id="me/saes")
    return hub, heldout


@pytest.mark.slow
def test_every_export_loads_in_saelens_with_its_metadata(tmp_path):
    project_transformer_lens = version("transformer-lens")
    python = saelens_venv()
    assert version("transformer-lens") == project_transformer_lens, "the SAELens venv must not touch the project venv"
    hub, x = _export_trial(tmp_path)
    published = sorted(str(p.parent) for p in hub.glob("saelens/*/*/cfg.json"))
    snapshot_dirs = sorted(str(p.parent) for p in (tmp_path / "sae").glob("B/*/*/L*/*/cfg.json"))
    assert len(published) == len(snapshot_dirs) == len(LAYERS) * len(SNAPSHOTS)
    folders = published + snapshot_dirs
    out = tmp_path / "saelens_out"
    out.mkdir()
    save_file({"x": x}, str(out / "x.safetensors"))
    proc = subprocess.run([str(python), "-c", LOADER, str(hub), str(out), json.dumps(folders)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, f"SAELens could not load the exports:\n{proc.stderr[-4000:]}"
    report = json.loads((out / "report.json").read_text())
    assert (report["sae_lens"], report["transformer_lens"]) == (SAELENS_VERSION, TRANSFORMER_LENS)
    for i, folder in enumerate(folders):
        got, layer, in_hub = report["saes"][folder], int(Path(folder).parent.name[-2:]), folder in published
        assert got == {"architecture": "standard", "d_in": 16, "d_sae": 32, "hook_name": f"blocks.{layer}.hook_resid_post",
                       "model_name": "EleutherAI/pythia-70m", "sae_lens_version": SAELENS_VERSION, "context_size": 64,
                       "dataset_path": "monology/pile-uncopyrighted", "prepend_bos": False,
                       "model_from_pretrained_kwargs": {"checkpoint_value": 1000}, "trial": "B",
                       "snapshot": Path(folder).name, "sparsity_shape": [32] if in_hub else None}, folder
        ours = load_sae(folder).encode(x)
        theirs = load_file(out / f"{i}.safetensors")
        assert ours.count_nonzero() > 0, "a meaningful comparison needs active latents"
        torch.testing.assert_close(theirs["disk"], ours, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(theirs["repo"], ours, rtol=1e-5, atol=1e-5)
        if in_hub:
            torch.testing.assert_close(theirs["sparsity"], load_file(Path(folder) / "sparsity.safetensors")["sparsity"])
