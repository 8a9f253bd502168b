# Config validation, wildcard pinning and the config helpers every rule's params use.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from interplab.config import ConfigError, load_schema, validate_config

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

# Each stage file adds its final targets here when the stage is enabled.
TARGETS = []


def all_targets():
    return TARGETS


def stage_enabled(stage):
    return stage in config["stages"]


def pinned(values):
    """A wildcard regex matching exactly the given values (fast, unambiguous DAG building)."""
    return "|".join(sorted({str(v).replace(".", r"\.") for v in values}))
