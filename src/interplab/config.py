"""Config validation against configs/schema.yaml, with defaults filled in and one clear message.

Snakemake's own `validate` reports the raw jsonschema error; a researcher editing config.yaml
wants to know which key is wrong, what it holds, and what is allowed. `validate_config` raises
`ConfigError` with exactly that before any job is scheduled.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "configs" / "schema.yaml"


class ConfigError(ValueError):
    """The config does not match the schema; the message names the key and the allowed values."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML config file; a syntax error names the file, line and column (Snakemake's does not)."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown line"
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path} is not valid YAML: {problem} at {where}. Fix the indentation or brackets "
                          "there (config.yaml documents every key).") from None


def _is_strict_integer(checker: Any, instance: Any) -> bool:
    """JSON schema counts 2.0 as an integer; a config value that becomes a range or a size must be an int."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_VALIDATOR = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer),
)


def coerce_strings(config: Any, schema: Mapping[str, Any]) -> Any:
    """Parse strings the schema rejects as strings but accepts once read as YAML.

    `snakemake --config 'toy={steps: 10}'` hands every nested value over as a string ("10"), and a
    user typing `steps: "10"` means the number. A string the schema takes as it is (`auto`, a path)
    is left alone.
    """
    if isinstance(config, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {key: coerce_strings(value, props.get(key, extra if isinstance(extra, dict) else {}))
                for key, value in config.items()}
    if isinstance(config, list):
        items = schema.get("items")
        return [coerce_strings(value, items) for value in config] if isinstance(items, dict) else config
    if isinstance(config, str) and schema and not _VALIDATOR(schema).is_valid(config):
        parsed = _parse_text(config)
        return config if isinstance(parsed, str) else coerce_strings(parsed, schema)
    return config


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)")


def _parse_text(text: str) -> Any:
    """YAML's reading of a string, plus exponent numbers without a dot (`1e-3`), which YAML 1.1 keeps as text."""
    if _NUMBER.fullmatch(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def fill_defaults(config: Any, schema: Mapping[str, Any]) -> Any:
    """Return a copy of `config` with every missing key that the schema gives a default for."""
    config = copy.deepcopy(config)
    if isinstance(config, dict) and schema.get("type") == "object":
        for key, sub in schema.get("properties", {}).items():
            if key not in config and "default" in sub and key not in schema.get("required", ()):
                config[key] = copy.deepcopy(sub["default"])
            if key in config:
                config[key] = fill_defaults(config[key], sub)
    return config


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = ""
    for part in error.absolute_path:
        parts += f"[{part}]" if isinstance(part, int) else (f".{part}" if parts else str(part))
    return parts or "<top level>"


def _allowed(schema: Mapping[str, Any]) -> str:
    """A short phrase for what the schema admits at this key."""
    if "enum" in schema:
        return "one of " + ", ".join(map(repr, schema["enum"]))
    if "allowed" in schema:
        return schema["allowed"]
    bits = []
    if "type" in schema:
        bits.append(schema["type"] if isinstance(schema["type"], str) else " or ".join(schema["type"]))
    lo = ("> " + str(schema["exclusiveMinimum"])) if "exclusiveMinimum" in schema else (
        (">= " + str(schema["minimum"])) if "minimum" in schema else None)
    hi = ("< " + str(schema["exclusiveMaximum"])) if "exclusiveMaximum" in schema else (
        ("<= " + str(schema["maximum"])) if "maximum" in schema else None)
    bits += [b for b in (lo, hi) if b]
    if "minItems" in schema:
        bits.append(f"at least {schema['minItems']} item(s)")
    if "properties" in schema and schema.get("additionalProperties") is False:
        bits.append("keys: " + ", ".join(schema["properties"]))
    return ", ".join(bits) or "see configs/schema.yaml"


def _message(error: jsonschema.ValidationError, source: str) -> str:
    key = _key_path(error)
    schema = error.schema
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(schema.get("properties", {})))
        return (f"{source}: unknown key(s) {', '.join(map(repr, extra))} under '{key}'. "
                f"Allowed keys: {', '.join(schema.get('properties', {}))}.")
    if error.validator == "required":
        missing = sorted(set(schema["required"]) - set(error.instance))
        where = "the config" if key == "<top level>" else f"'{key}'"
        return (f"{source}: {where} is missing {', '.join(map(repr, missing))}, which is required. "
                f"Allowed: a value as config.yaml documents it (copy the section or key from there).")
    what = schema.get("description", "")
    hint = f" ({what})" if what else ""
    return (f"{source}: config key '{key}' has invalid value {error.instance!r}: {error.message}. "
            f"Allowed: {_allowed(schema)}{hint}.")


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None, source: str = "config") -> dict:
    """Fill defaults and validate; raise ConfigError naming the first offending key."""
    schema = load_schema() if schema is None else schema
    filled = fill_defaults(coerce_strings(dict(config), schema), schema)
    validator = _VALIDATOR(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_message(best, source))
    _check_cross_fields(filled, source)
    return filled


def _check_cross_fields(config: Mapping[str, Any], source: str) -> None:
    """Constraints JSON schema cannot state cleanly: names that must refer to other keys."""
    toy = config["toy"]
    if toy["mode"] == "distill" and not toy["teacher_widths"]:
        raise ConfigError(f"{source}: config key 'toy.teacher_widths' has value [] but toy.mode is 'distill'. "
                          "Allowed: at least one teacher width, e.g. teacher_widths: [3, 5, 8, 10], or mode: direct.")
    trials = list(config["sae"]["trials"])
    figures = config["kd"]["figures"]
    for key, named in (("kd.figures", figures if isinstance(figures, dict) else {}),
                       ("publish.repo_ids", config["publish"]["repo_ids"])):
        unknown = sorted(set(named) - set(trials))
        if unknown:
            raise ConfigError(f"{source}: {key} names trial(s) {', '.join(map(repr, unknown))}, which sae.trials "
                              f"does not define. Allowed: {', '.join(map(repr, trials))}.")
    grok, interventions = config["grok"], config["interventions"]
    regimes = list(grok["regimes"])
    seen: set[str] = set()
    for index, entry in enumerate(grok["runs"]):
        if entry["regime"] not in grok["regimes"]:
            raise ConfigError(f"{source}: grok.runs[{index}].regime {entry['regime']!r} is not a regime. "
                              f"Allowed: {', '.join(map(repr, regimes))} (grok.regimes).")
        for seed in entry["seeds"]:
            name = f"{entry['regime']}-n{entry['n_train']}-s{seed}"
            if name in seen:
                raise ConfigError(f"{source}: grok.runs lists run {name!r} twice (same regime, n_train and seed); "
                                  "give each seed once.")
            seen.add(name)
    for role, regime in interventions["compare"].items():
        if regime not in grok["regimes"]:
            raise ConfigError(f"{source}: interventions.compare.{role} names regime {regime!r}, which is not in "
                              f"grok.regimes. Allowed: {', '.join(map(repr, regimes))}.")
    if interventions["criteria"]["neuron_k"] not in interventions["neuron_k"]:
        raise ConfigError(f"{source}: interventions.criteria.neuron_k {interventions['criteria']['neuron_k']} is not "
                          f"in interventions.neuron_k {interventions['neuron_k']}; the criterion needs that K ablated. "
                          f"Allowed: one of {interventions['neuron_k']}.")
