# interplab: one DAG from config to paper figures. See README.md; config keys are documented in
# config.yaml and validated against configs/schema.yaml before anything runs.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
# Jobs import this workflow's own library too, in the .venv or in a rule's conda env (envs/*.yaml),
# which does not install the package; on a cluster node the job's own Snakefile parse sets it again.
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [_SRC, os.environ.get("PYTHONPATH")])))

from interplab.config import ConfigError, read_yaml

try:  # Snakemake's own message for a YAML error gives no line number
    read_yaml(Path(workflow.basedir) / "config.yaml")
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration. {error}") from None


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/toy.smk"
include: "rules/teacher.smk"
include: "rules/cache.smk"
include: "rules/sae.smk"
include: "rules/kd.smk"
include: "rules/sizes.smk"
include: "rules/distill.smk"
include: "rules/publish.smk"
include: "rules/grokking.smk"
include: "rules/interventions.smk"


rule all:
    default_target: True
    input:
        all_targets(),


for _stage, _targets in STAGE_TARGETS.items():

    rule:
        name:
            f"all_{_stage}"
        localrule: True
        input:
            _targets,
