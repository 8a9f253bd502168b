# Config validation, wildcard pinning and the config helpers every rule's params use.
import dataclasses

from interplab.config import load_schema, validate_config

try:
    _validated = validate_config(
        config,
        load_schema(Path(workflow.basedir) / "configs" / "schema.yaml"),
        source="config",
    )
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration. {error}") from None
config.clear()
config.update(_validated)

RESULTS = "results"
LOGS = "results/logs"
BENCH = "results/benchmarks"

localrules:
    all,

# Final targets per stage: `all` builds those of the enabled stages, `all_<stage>` one stage alone
# (the DVC stages in dvc.yaml call those).
STAGE_TARGETS = {}


def register_targets(stage, paths):
    STAGE_TARGETS.setdefault(stage, []).extend(paths)


def all_targets():
    return [path for stage in config["stages"] for path in STAGE_TARGETS.get(stage, [])]


def stage_enabled(stage):
    return stage in config["stages"]


def by_attempt(base):
    """A resource that grows with each retry (`retries:` in the SLURM profile): base × attempt."""

    def scaled(wildcards, attempt):
        return base * attempt

    return scaled


def as_params(obj):
    """A dataclass as the plain values Snakemake records with a job, so changing any of them reruns it
    (an object param is stored as 'unrepresentable' and its changes go unseen)."""
    return dataclasses.asdict(obj)


def pinned(values):
    """A wildcard regex matching exactly the given values (fast, unambiguous DAG building)."""
    return "|".join(sorted({str(v).replace(".", r"\.") for v in values}))
