import copy

import pytest
import yaml

from interplab.config import ConfigError, load_schema, read_yaml, validate_config


@pytest.fixture(scope="module")
def schema(root):
    return load_schema(root / "configs" / "schema.yaml")


@pytest.fixture()
def default(root):
    return yaml.safe_load((root / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "configs/paper.yaml"])
def test_shipped_configs_validate(root, schema, default, name):
    """A --configfile is merged over config.yaml, as Snakemake does."""
    from snakemake.utils import update_config

    update_config(default, yaml.safe_load((root / name).read_text()))
    validated = validate_config(default, schema)
    assert validated["toy"]["alphas"]


def test_missing_section_is_named(default, schema):
    cfg = copy.deepcopy(default)
    del cfg["kd"]
    _expect(cfg, schema, "the config is missing 'kd'", "config.yaml")


def _expect(config, schema, *fragments):
    with pytest.raises(ConfigError) as err:
        validate_config(config, schema)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)


def test_wrong_type_names_key(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["steps"] = "many"
    _expect(cfg, schema, "toy.steps", "'many'", "integer")


def test_unknown_key_lists_allowed(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["stepz"] = 10
    _expect(cfg, schema, "unknown key(s) 'stepz'", "toy", "steps")


def test_alpha_outside_open_interval(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["alphas"] = [0.9, 1.0]
    _expect(cfg, schema, "toy.alphas[1]", "1.0", "< 1", "> 0")


def test_empty_grid(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["n_features"] = []
    _expect(cfg, schema, "toy.n_features", "at least 1")


def test_enum_lists_allowed_values(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["mode"] = "teach"
    _expect(cfg, schema, "toy.mode", "'direct', 'distill'")


def test_distill_without_teachers(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["mode"] = "distill"
    cfg["toy"]["teacher_widths"] = []
    _expect(cfg, schema, "toy.teacher_widths", "[]", "mode: direct")


def test_schema_defaults_are_the_documented_config(root, schema):
    """A section left out of a config gets exactly what config.yaml documents, never other values."""
    default = yaml.safe_load((root / "config.yaml").read_text())
    empty_sections = {key: {} if isinstance(value, dict) else value for key, value in default.items()}
    assert validate_config(empty_sections, schema) == validate_config(default, schema)


def test_integer_keys_reject_floats(default, schema):
    cfg = copy.deepcopy(default)
    cfg["toy"]["n_seeds"] = 2.0
    _expect(cfg, schema, "toy.n_seeds", "2.0", "not of type 'integer'")


def test_strings_from_the_command_line_are_parsed(default, schema):
    """`snakemake --config 'toy={steps: 10}'` delivers nested values as strings."""
    cfg = copy.deepcopy(default)
    cfg["toy"].update(steps="150", lr="1e-3", student_widths="[1, 2]", alphas=["0.5", "0.9"])
    cfg["sae"]["dict_size"] = "null"
    toy = validate_config(cfg, schema)["toy"]
    assert (toy["steps"], toy["lr"], toy["student_widths"], toy["alphas"]) == (150, 1e-3, [1, 2], [0.5, 0.9])
    assert toy["mode"] == "direct" and validate_config(cfg, schema)["sae"]["dict_size"] is None
    cfg["toy"]["student_widths"] = "auto"
    assert validate_config(cfg, schema)["toy"]["student_widths"] == "auto"


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("toy:\n  steps: 10\n  alphas: [0.8, 0.9\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"config.yaml is not valid YAML: .* at line 4, column \d+"):
        read_yaml(path)


def test_unknown_trial_names_are_rejected(default, schema):
    cfg = copy.deepcopy(default)
    cfg["publish"]["repo_ids"] = {"D": "me/saes"}
    _expect(cfg, schema, "publish.repo_ids", "'D'", "'A', 'B', 'C'")


def test_run_names_cannot_collide():
    from interplab.toy import grid

    section = {"mode": "direct", "n_features": [8], "alphas": [0.9, 0.9000001, 0.90000000001], "teacher_widths": [],
               "student_widths": [1, 2], "n_widths": 2, "n_seeds": 1, "importance_decay": 0.9, "steps": 10,
               "teacher_steps": 10, "batch_size": 4, "lr": 0.01, "eval_samples": 100, "final_fraction": 0.1,
               "convergence_tolerance": 0.0, "engine": "auto"}
    assert len(grid(section)) == 3, "every α gets its own run (and file)"
