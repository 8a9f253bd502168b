"""Bad configurations stop the workflow before any job, with a message that names the key, the value
and what is allowed. Every case goes through the real Snakefile (`snakemake -n`), all in one
Python process (tests/dry_run_many.py) so the 40 dry runs cost about a second each."""
import copy
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, make_workdir, run_snakemake

DEFAULT = yaml.safe_load((ROOT / "config.yaml").read_text())


def setting(path, value):
    """A change that sets the dotted `path` (list indices as integers) to `value`."""
    def change(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return change


# (case id, change, fragments the message must contain: the key, the offending value, what is allowed)
CASES = [
    ("string for integer", setting("toy.steps", "many"), ["toy.steps", "'many'", "integer"]),
    ("float for integer", setting("toy.steps", 2.0), ["toy.steps", "2.0", "integer"]),
    ("below minimum", setting("toy.steps", 1), ["toy.steps", "1", ">= 10"]),
    ("absurd size", setting("toy.n_features", [100_000_000]), ["toy.n_features[0]", "100000000", "<= 4096"]),
    ("alpha at 1", setting("toy.alphas", [0.9, 1.0]), ["toy.alphas[1]", "1.0", "< 1"]),
    ("duplicate alpha", setting("toy.alphas", [0.9, 0.9]), ["toy.alphas", "0.9", "unique"]),
    ("empty grid", setting("toy.n_features", []), ["toy.n_features", "[]", "at least 1"]),
    ("unknown mode", setting("toy.mode", "teach"), ["toy.mode", "'teach'", "'direct', 'distill'"]),
    ("distill without teachers", setting("toy.mode", "distill"), ["toy.teacher_widths", "[]", "teacher width"]),
    ("unknown key", setting("toy.stepz", 10), ["'stepz'", "toy", "Allowed keys"]),
    ("unknown section", setting("toys", {}), ["'toys'", "Allowed keys"]),
    ("missing section", lambda config: config.pop("kd"), ["the config is missing 'kd'", "required", "config.yaml"]),
    ("trial without λ", setting("sae.trials.D", {"l1_form": "sum"}), ["sae.trials.D", "'l1_coefficient'", "required"]),
    ("unknown stage", setting("stages", ["toy", "bogus"]), ["stages[1]", "'bogus'", "'toy'"]),
    ("stages not a list", setting("stages", 5), ["stages", "5", "array"]),
    ("unknown device", setting("device", "gpu"), ["device", "'gpu'", "'auto', 'cpu', 'cuda'"]),
    ("revision not on schedule", setting("model.revisions", ["step5"]), ["model.revisions", "step5", "step4"]),
    ("layer beyond the teacher", setting("model.layers", [7]), ["model.layers", "7", "0..3"]),
    ("heads do not divide width", setting("model.teacher.n_heads", 3), ["model.teacher.n_heads", "3", "divisor of d_model"]),
    ("hub corpus for local teacher", setting("model.corpus.source", "hf"), ["model.corpus.source", "hf", "stdlib"]),
    ("unknown cache dtype", setting("cache.dtype", "int8"), ["cache.dtype", "'int8'", "'float16'"]),
    ("zero cache tokens", setting("cache.train_tokens", 0), ["cache.train_tokens", "0", ">= 1"]),
    ("unknown L1 form", setting("sae.trials.A.l1_form", "max"), ["sae.trials.A.l1_form", "'max'", "'sum', 'mean'"]),
    ("no trials", setting("sae.trials", {}), ["sae.trials", "{}", "1"]),
    ("zero target L0", setting("sae.trials.C.adaptive.target_l0", 0), ["target_l0", "0", "> 0"]),
    ("training below one batch", setting("sae.training_tokens", 100), ["sae.training_tokens", "100", "sae.batch_size"]),
    ("snapshots descending", setting("sae.snapshots", [200000, 100000]), ["sae.snapshots", "100000", "above the previous"]),
    ("float expansion", setting("sae.expansion", 2.5), ["sae.expansion", "2.5", "integer"]),
    ("figures for unknown trial", setting("kd.figures", {"Z": "all"}), ["kd.figures", "'Z'", "'A', 'B', 'C'"]),
    ("sizes layer not studied", setting("sizes.layer", 7), ["sizes.layer", "7", "[0, 1, 2, 3]"]),
    ("sizes descending", setting("sizes.expansions", [4, 1]), ["sizes.expansions", "[4, 1]", "ascending"]),
    ("one dictionary size", setting("sizes.expansions", [4]), ["sizes.expansions", "[4]", "at least 2"]),
    ("unknown figure", setting("kd.figures", {"A": ["pie_chart"]}), ["kd.figures.A[0]", "'pie_chart'", "training_curves"]),
    ("repo for unknown trial", setting("publish.repo_ids", {"Z": "me/saes"}), ["publish.repo_ids", "'Z'", "'A', 'B', 'C'"]),
    ("malformed repo id", setting("publish.repo_ids", {"A": "not a repo"}), ["publish.repo_ids.A", "'not a repo'", "user/repo"]),
    ("OOD hospital trains", setting("grok.data.ood_hospital", 0), ["ood_hospital", "0", "train_hospitals"]),
    ("zero learning rate", setting("grok.regimes.grokking.lr", 0), ["grok.regimes.grokking.lr", "0", "> 0"]),
    ("run of unknown regime", setting("grok.runs.0.regime", "turbo"), ["grok.runs[0].regime", "'turbo'", "'standard', 'grokking'"]),
    ("run listed twice", setting("grok.runs", [{"regime": "standard", "n_train": 300, "seeds": [0]}] * 2),
     ["grok.runs", "'standard-n300-s0'", "once"]),
    ("absurd epochs", setting("grok.epochs", 1_000_000_000), ["grok.epochs", "1000000000", "<= 100000"]),
    ("compare unknown regime", setting("interventions.compare.treatment", "nope"),
     ["interventions.compare.treatment", "'nope'", "'standard', 'grokking'"]),
    ("criterion K not ablated", setting("interventions.criteria.neuron_k", 7), ["interventions.criteria.neuron_k", "7", "[0, 8"]),
    ("unknown checkpoint choice", setting("interventions.checkpoint", "best"), ["interventions.checkpoint", "'best'", "peak_ood"]),
    ("unparseable number", setting("toy.steps", "10x"), ["toy.steps", "'10x'", "integer"]),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("bad-configs"))
    paths = []
    for index, (_, change, _) in enumerate(CASES):
        config = copy.deepcopy(DEFAULT)
        change(config)
        path = workdir / f"bad_{index:02d}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        paths.append(path.name)
    out = workdir / "results.json"
    subprocess.run([sys.executable, str(ROOT / "tests" / "dry_run_many.py"), str(out), *paths], cwd=workdir,
                   check=True, env={**os.environ, "PYTHONPATH": str(workdir / "src")}, capture_output=True)
    return workdir, {entry["config"]: entry for entry in json.loads(out.read_text())}


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case[0] for case in CASES])
def test_bad_config_stops_before_any_job_and_says_why(results, index):
    workdir, by_config = results
    entry, fragments = by_config[f"bad_{index:02d}.yaml"], CASES[index][2]
    output = entry["output"]
    assert not entry["ok"] and "Invalid configuration" in output, output[-2000:]
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} missing from:\n{output[-2000:]}"
    assert "Traceback" not in output
    assert not (workdir / "results").exists(), "no job may run"


def test_there_are_at_least_36_kinds():
    assert len(CASES) >= 36


def test_yaml_syntax_error_in_config_names_its_line(tmp_path):
    workdir = make_workdir(tmp_path)
    lines = (workdir / "config.yaml").read_text().splitlines()
    broken = lines.index("toy:") + 1
    lines.insert(broken, "  steps: [2000")  # an unclosed bracket
    (workdir / "config.yaml").write_text("\n".join(lines) + "\n")
    proc = run_snakemake(workdir, "all", extra=["-n"], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config.yaml is not valid YAML" in out, out[-1500:]
    reported = int(re.search(r"at line (\d+)", out).group(1))
    assert broken + 1 <= reported <= broken + 4, "the line of the error, or the first line YAML reads past it"
