import copy

import pytest
import yaml

from interplab.config import ConfigError, load_schema, validate_config


@pytest.fixture(scope="module")
def schema(root):
    return load_schema(root / "configs" / "schema.yaml")


@pytest.fixture()
def default(root):
    return yaml.safe_load((root / "config.yaml").read_text())


@pytest.mark.parametrize("name", ["config.yaml", "configs/paper.yaml"])
def test_shipped_configs_validate(root, schema, name):
    validated = validate_config(yaml.safe_load((root / name).read_text()), schema)
    assert validated["toy"]["alphas"]


def test_defaults_filled(schema):
    validated = validate_config({}, schema)
    assert validated["device"] == "auto"
    assert validated["toy"]["critical_tolerance"] == 0.05


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
    _expect(cfg, schema, "teacher_widths is empty")
