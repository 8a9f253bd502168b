"""Train (or resume) one grokking run: a Camelyon17 ResNet-18 or the modular-addition control."""
from pathlib import Path

from interplab.grok.tasks import make_task
from interplab.grok.train import train_run
from interplab.runtime import resolve_device
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    spec = sm.params.spec
    device = resolve_device(sm.params.device)
    run_dir = Path(sm.output.manifest).parent
    inputs = {"fixture_metadata": str(Path(p) / "camelyon17_v1.0" / "metadata.csv") for p in sm.input}
    train_run(spec, make_task(spec, device), run_dir, device, inputs=inputs)
