"""Config validation against configs/schema.yaml, with defaults filled in and one clear message.

Snakemake's own `validate` reports the raw jsonschema error; a researcher editing config.yaml
wants to know which key is wrong, what it holds, and what is allowed. `validate_config` raises
`ConfigError` with exactly that before any job is scheduled.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "configs" / "schema.yaml"


class ConfigError(ValueError):
    """The config does not match the schema; the message names the key and the allowed values."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


def fill_defaults(config: Any, schema: Mapping[str, Any]) -> Any:
    """Return a copy of `config` with every missing key that the schema gives a default for."""
    config = copy.deepcopy(config)
    if isinstance(config, dict) and schema.get("type") == "object":
        for key, sub in schema.get("properties", {}).items():
            if key not in config and "default" in sub:
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
        return f"{source}: '{key}' is missing a required key: {error.message}."
    what = schema.get("description", "")
    hint = f" ({what})" if what else ""
    return (f"{source}: config key '{key}' has invalid value {error.instance!r}: {error.message}. "
            f"Allowed: {_allowed(schema)}{hint}.")


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None, source: str = "config") -> dict:
    """Fill defaults and validate; raise ConfigError naming the first offending key."""
    schema = load_schema() if schema is None else schema
    filled = fill_defaults(dict(config), schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_message(best, source))
    _check_cross_fields(filled, source)
    return filled


def _check_cross_fields(config: Mapping[str, Any], source: str) -> None:
    """Constraints JSON schema cannot state cleanly."""
    toy = config.get("toy", {})
    if toy.get("mode") == "distill" and not toy.get("teacher_widths"):
        raise ConfigError(f"{source}: toy.mode is 'distill' but toy.teacher_widths is empty. "
                          "Give at least one teacher width, e.g. teacher_widths: [3, 5, 8, 10], or set mode: direct.")
