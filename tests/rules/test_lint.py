"""Workflow-catalog conventions: `snakemake --lint` is clean, and every rule's conda env can run its script.

The conda envs cannot be built here (no conda channel is reachable), so the test checks what would
break them on a cluster node: a pin that drifted from requirements.txt, or a script importing a
package its rule's env neither lists nor pulls in as a dependency.
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT, SNAKEMAKE

ENV_DIRECTIVE = re.compile(r'conda:\s*\n\s*"\.\./envs/(\w+)\.yaml"')
SCRIPT_DIRECTIVE = re.compile(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"')
RULE_FILES = sorted(path for path in (ROOT / "rules").glob("*.smk") if "script:" in path.read_text())


def pinned_requirements() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(req.name): str(req.specifier) for req in pins}


def env_pins(env: str) -> dict[str, str]:
    spec = yaml.safe_load((ROOT / "envs" / f"{env}.yaml").read_text())
    pip = next(item["pip"] for item in spec["dependencies"] if isinstance(item, dict))
    return {canonicalize_name(Requirement(line).name): str(Requirement(line).specifier) for line in pip}


def third_party_imports(script: Path) -> set[str]:
    """Top-level modules outside the standard library that a script imports, following interplab's own
    modules transitively (every import statement counts, lazy ones included)."""
    seen: set[Path] = set()
    found: set[str] = set()
    stack = [script]
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] != "interplab":
                    found.add(parts[0])
                    continue
                for depth in range(1, len(parts) + 1):
                    base = ROOT / "src" / Path(*parts[:depth])
                    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                        if candidate.exists():
                            stack.append(candidate)
    return found - set(sys.stdlib_module_names) - {"snakemake"}


@functools.cache
def module_providers() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@functools.cache
def installed_closure(names: frozenset[str]) -> frozenset[str]:
    """The distributions pip would install for `names`: they and their (non-extra) requirements, as
    the project's venv resolved them."""
    closure: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in closure:
            continue
        closure.add(name)
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(canonicalize_name(req.name))
    return frozenset(closure)


def test_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize("env", sorted(path.stem for path in (ROOT / "envs").glob("*.yaml")))
def test_env_pins_mirror_requirements(env):
    required = pinned_requirements()
    pins = env_pins(env)
    assert pins, f"envs/{env}.yaml lists no pip packages"
    drifted = {name: (spec, required.get(name)) for name, spec in pins.items() if required.get(name) != spec}
    assert not drifted, f"envs/{env}.yaml pins differ from requirements.txt (env, requirements): {drifted}"


@pytest.mark.parametrize("rules", RULE_FILES, ids=lambda path: path.stem)
def test_every_script_runs_in_its_rules_env(rules):
    text = rules.read_text()
    envs = set(ENV_DIRECTIVE.findall(text))
    scripts = SCRIPT_DIRECTIVE.findall(text)
    assert len(envs) == 1, f"{rules.name}: one conda env per rule family, found {sorted(envs)}"
    assert text.count("script:") == text.count("conda:"), f"{rules.name}: a rule without a conda env"
    (env,) = envs
    available = installed_closure(frozenset(env_pins(env)))
    providers = module_providers()
    for script in scripts:
        for module in third_party_imports(ROOT / "scripts" / f"{script}.py"):
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            assert dists, f"scripts/{script}.py imports {module}, which no installed distribution provides"
            assert dists & available, (f"scripts/{script}.py imports {module} ({', '.join(sorted(dists))}), "
                                       f"which envs/{env}.yaml neither pins nor pulls in: add it there")
