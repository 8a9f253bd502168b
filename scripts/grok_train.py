"""Train (or resume) one grokking run: a Camelyon17 ResNet-18 or the modular-addition control."""
from pathlib import Path

from interplab.grok.data import DATA_DIRNAME
from interplab.grok.runs import CAMELYON, spec_from_dict
from interplab.grok.tasks import make_task
from interplab.grok.train import train_run
from interplab.runtime import resolve_device
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    spec = spec_from_dict(sm.params.spec)
    device = resolve_device(sm.params.device)
    run_dir = Path(sm.output.manifest).parent
    inputs = {}
    if spec.task == CAMELYON:  # the dataset's identity: its index and release file (the fixture's names its config)
        data_dir = Path(spec.setup.data.root_dir) / DATA_DIRNAME
        inputs = {"metadata": str(data_dir / "metadata.csv"), "release": str(data_dir / "RELEASE_v1.0.txt")}
    train_run(spec, make_task(spec, device), run_dir, device, inputs=inputs)
