"""Mutation testing of the core science modules: does the suite notice a realistic one-line bug?

Each mutant is one small edit to one module (the operators below), made in memory: a forked child
process imports the mutated module in place of the real one and runs that module's unit tests
(`TESTS`, stopping at the first failure). A mutant is *killed* when a test fails, errors or runs
past the timeout, and *survives* when every test passes. Survivors that cannot change behaviour
(equivalent) or are accepted with a reason are listed in `benchmarks/mutants_accepted.tsv`; the
score is killed / (mutants − accepted).

Operators (one per mutant): arithmetic swaps (+ ↔ −, × ↔ ÷, // → /, ** → ×, & ↔ |), comparison
flips (< ↔ ≤, > ↔ ≥, == ↔ !=, in ↔ not in, is ↔ is not), and ↔ or, dropped `not` and unary minus,
integer constants + 1, float constants × 2 (0.0 → 1.0), True ↔ False, min ↔ max (and argmin/argmax,
amin/amax), one-sided slices flipped (x[:n] ↔ x[n:]), split names swapped ("train" ↔ "test"/"heldout",
"id" ↔ "ood"), and dropped statements (a call, an in-place update, an attribute or item assignment,
break/continue). Not mutated: docstrings and other strings, error messages (raise), logging,
annotations, decorators, default argument values, dataclass field defaults and module-level
constants (configuration, mostly set from config.yaml), and float guards below 1e-4 (clamps against division by zero).

Why forked children instead of a pytest run per mutant: importing torch, pandas and sklearn takes
seconds; the parent imports them once and each child starts with them loaded.

    python benchmarks/mutate.py                   # every module, writes benchmarks/RESULTS.md's table
    python benchmarks/mutate.py kd sae.l1         # some modules (no RESULTS.md update)
    python benchmarks/mutate.py --merge kd        # some modules, their rows replaced in RESULTS.md's table
    python benchmarks/mutate.py --list kd         # the mutants (line, key), without running them
    python benchmarks/mutate.py --keep-kills benchmarks/results/mutate.json   # rerun only the survivors

With --merge the other modules keep their rows and surviving-mutant lines as the table has them; the
`measured` column dates each row's run.
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ACCEPTED = ROOT / "benchmarks" / "mutants_accepted.tsv"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
RAW = ROOT / "benchmarks" / "results" / "mutate.json"
BEGIN, END = "<!-- mutate:begin -->", "<!-- mutate:end -->"

# Module (under interplab) → the unit test files that exercise it. Rule tests (Snakemake runs) are
# left out: they take minutes each, and the pipeline logic they cover has unit tests of its own.
TESTS = {
    "theory": ["tests/unit/test_theory.py"],
    "toy": ["tests/unit/test_toy.py", "tests/unit/test_toy_values.py"],
    "toy_analysis": ["tests/unit/test_toy.py", "tests/unit/test_toy_values.py"],
    "kd": ["tests/unit/test_kd.py", "tests/unit/test_kd_values.py"],
    "sae.model": ["tests/unit/test_sae.py", "tests/unit/test_sae_values.py"],
    "sae.trainer": ["tests/unit/test_sae_values.py", "tests/unit/test_sae.py", "tests/unit/test_sae_group.py",
                    "tests/unit/test_integrity.py"],
    "sae.sources": ["tests/unit/test_sae_group.py"],
    "sae.l1": ["tests/unit/test_sae_values.py", "tests/unit/test_sae.py"],
    "sae.sizes": ["tests/unit/test_sizes.py"],
    "activations": ["tests/unit/test_activations.py", "tests/unit/test_activations_values.py",
                    "tests/unit/test_integrity.py"],
    "grok.analysis": ["tests/unit/test_grok_values.py", "tests/unit/test_grok_training.py"],
    "grok.tasks": ["tests/unit/test_grok_values.py", "tests/unit/test_grok_training.py"],
    "interventions.erasure": ["tests/unit/test_interventions_values.py", "tests/unit/test_interventions.py"],
    "interventions.steering": ["tests/unit/test_interventions_values.py", "tests/unit/test_interventions.py"],
    "interventions.stats": ["tests/unit/test_interventions_values.py", "tests/unit/test_interventions.py"],
    "interventions.across_runs": ["tests/unit/test_interventions_values.py", "tests/unit/test_interventions_run.py"],
}

BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
          ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
COMPARES = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
NAME_SWAPS = {"min": "max", "max": "min", "argmin": "argmax", "argmax": "argmin", "amin": "amax", "amax": "amin"}
SPLIT_SWAPS = {"train": "test", "test": "train", "heldout": "train", "id": "ood", "ood": "id"}
LOGGERS = {"log", "logging", "warnings", "print"}
FLOAT_GUARD = 1e-4
PRELOAD = ["numpy", "pandas", "scipy.stats", "sklearn.linear_model", "sklearn.discriminant_analysis",
           "sklearn.model_selection", "torch", "torchvision", "safetensors.torch", "concept_erasure",
           "matplotlib.pyplot", "yaml", "hypothesis", "pytest"]


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # position in the module's enumeration order
    key: str  # stable across line shifts: function, edit and occurrence
    line: int
    end_line: int
    in_function: bool  # else it runs at import time, so every test of the module is run against it
    description: str


def _short(node: ast.AST, limit: int = 70) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _is_logging_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in LOGGERS


def _deletable(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Expr):
        return isinstance(stmt.value, ast.Call) and not _is_logging_call(stmt.value)
    if isinstance(stmt, (ast.AugAssign, ast.Break, ast.Continue)):
        return True
    return isinstance(stmt, ast.Assign) and all(isinstance(t, (ast.Attribute, ast.Subscript)) for t in stmt.targets)


class Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, numbering every possible edit; applies edit `target` (or none)."""

    def __init__(self, target: int = -1) -> None:
        self.target, self.count, self.found = target, 0, []
        self.scope: list[str] = []
        self.in_function = 0
        self.keyword: str | None = None

    def _offer(self, original: ast.AST, mutated: ast.AST, description: str | None = None) -> ast.AST:
        index = self.count
        self.count += 1
        where = ".".join(self.scope) or "<module>"
        self.found.append((index, where, original.lineno, original.end_lineno, self.in_function > 0,
                           description or f"{_short(original)} → {_short(mutated)}"))
        return ast.copy_location(mutated, original) if index == self.target else original

    # ---- what is not mutated
    def visit_Raise(self, node):
        return node

    def visit_JoinedStr(self, node):
        return node

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) or _is_logging_call(node.value):  # docstring, logging
            return node
        return self.generic_visit(node)

    def visit_AnnAssign(self, node):  # dataclass fields: annotation and default are configuration
        return node

    def visit_Assign(self, node):  # module-level names for constants (EVAL_BATCH, FORMAT_VERSION, …)
        return self.generic_visit(node) if self.scope else node

    def visit_FunctionDef(self, node):
        self.scope.append(node.name)
        self.in_function += 1
        node.body = self._body(node.body)
        self.in_function -= 1
        self.scope.pop()
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.scope.append(node.name)
        node.body = self._body(node.body)
        self.scope.pop()
        return node

    def visit_Import(self, node):
        return node

    visit_ImportFrom = visit_Import

    # ---- statement bodies: dropped statements
    def _body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        out = []
        for stmt in statements:
            if _deletable(stmt):
                stmt = self._offer(stmt, ast.Pass(), f"drop `{_short(stmt)}`")
            out.append(self.visit(stmt))
        return out

    def generic_visit(self, node):
        for field, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, field, self._body(value))
            elif isinstance(value, list):
                setattr(node, field, [self.visit(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
        return node

    # ---- expression edits
    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        if type(node.op) in BINOPS:
            mutated = ast.BinOp(node.left, BINOPS[type(node.op)](), node.right)
            return self._offer(node, mutated)
        return node

    def visit_AugAssign(self, node):
        node = self.generic_visit(node)
        if type(node.op) in BINOPS:
            return self._offer(node, ast.AugAssign(node.target, BINOPS[type(node.op)](), node.value))
        return node

    def visit_Compare(self, node):
        node = self.generic_visit(node)
        for i, op in enumerate(node.ops):
            if type(op) in COMPARES:
                ops = list(node.ops)
                ops[i] = COMPARES[type(op)]()
                node = self._offer(node, ast.Compare(node.left, ops, node.comparators))
        return node

    def visit_BoolOp(self, node):
        node = self.generic_visit(node)
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return self._offer(node, ast.BoolOp(other, node.values))

    def visit_UnaryOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, (ast.Not, ast.USub)):
            return self._offer(node, node.operand)
        return node

    def visit_keyword(self, node):  # name the keyword in a constant's description: `stable=True → False`
        self.keyword = node.arg if isinstance(node.value, ast.Constant) else None
        node.value = self.visit(node.value)
        self.keyword = None
        return node

    def visit_Constant(self, node):
        value, mutated = node.value, None
        if isinstance(value, bool):
            mutated = ast.Constant(not value)
        elif isinstance(value, int):
            mutated = ast.Constant(value + 1)
        elif isinstance(value, float) and (value == 0.0 or abs(value) >= FLOAT_GUARD):
            mutated = ast.Constant(value * 2 if value else 1.0)
        elif isinstance(value, str) and value in SPLIT_SWAPS:
            mutated = ast.Constant(SPLIT_SWAPS[value])
        if mutated is None:
            return node
        prefix = f"{self.keyword}=" if self.keyword else ""
        return self._offer(node, mutated, f"{prefix}{_short(node)} → {prefix}{_short(mutated)}")

    def visit_Name(self, node):
        if node.id in NAME_SWAPS and isinstance(node.ctx, ast.Load):
            return self._offer(node, ast.Name(NAME_SWAPS[node.id], ast.Load()))
        return node

    def visit_Attribute(self, node):
        node = self.generic_visit(node)
        if node.attr in NAME_SWAPS and isinstance(node.ctx, ast.Load):
            return self._offer(node, ast.Attribute(node.value, NAME_SWAPS[node.attr], ast.Load()))
        return node

    def visit_Slice(self, node):
        node = self.generic_visit(node)
        if node.step is None and (node.lower is None) != (node.upper is None):
            return self._offer(node, ast.Slice(node.upper, node.lower, None),
                               f"[{_short(node)}] → [{_short(ast.Slice(node.upper, node.lower, None))}]")
        return node


def module_path(module: str) -> Path:
    return SRC / "interplab" / (module.replace(".", "/") + ".py")


def mutants(module: str) -> list[Mutant]:
    mutator = Mutator()
    mutator.visit(ast.parse(module_path(module).read_text()))
    seen: dict[tuple[str, str], int] = {}
    out = []
    for index, where, line, end_line, in_function, description in mutator.found:
        occurrence = seen[(where, description)] = seen.get((where, description), -1) + 1
        out.append(Mutant(module, index, f"{module}:{where}:{description}#{occurrence}", line, end_line,
                          in_function, description))
    return out


def mutated_code(module: str, index: int):
    path = module_path(module)
    tree = Mutator(index).visit(ast.parse(path.read_text()))
    return compile(ast.fix_missing_locations(tree), str(path), "exec")


class MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module's mutated code object to `import`."""

    def __init__(self, fullname: str, code) -> None:
        self.fullname, self.code = fullname, code

    def find_spec(self, fullname, path, target=None):
        if fullname != self.fullname:
            return None
        return importlib.util.spec_from_file_location(fullname, self.code.co_filename, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.code, module.__dict__)


def test_files(module: str) -> list[str]:
    """The module's test files that exist (a file named in TESTS but not yet written is reported)."""
    present = [t for t in TESTS[module] if (ROOT / t).exists()]
    for missing in sorted(set(TESTS[module]) - set(present)):
        print(f"{module}: {missing} does not exist, mutating against the others", file=sys.stderr)
    return present


class LineRecorder:
    """pytest plugin: which lines of one file each test executes (setup and call), and which lines any
    setup executes (a module-scoped fixture runs in its first test's setup but serves the whole file)."""

    def __init__(self, filename: str) -> None:
        self.filename, self.current = filename, None
        self.lines: dict[str, set[int]] = {}
        self.setup_lines: dict[str, set[int]] = {}
        self.seconds: dict[str, float] = {}

    def _global(self, frame, event, arg):
        if frame.f_code.co_filename == self.filename:
            return self._local
        return None

    def _local(self, frame, event, arg):
        if event == "line":
            self.current.add(frame.f_lineno)
        return self._local

    def _traced(self, item, phase: str):
        self.current = self.lines.setdefault(item.nodeid, set())
        before = set(self.current)
        start = time.monotonic()
        sys.settrace(self._global)
        try:
            yield
        finally:
            sys.settrace(None)
            self.seconds[item.nodeid] = self.seconds.get(item.nodeid, 0.0) + time.monotonic() - start
            if phase == "setup":
                self.setup_lines.setdefault(item.nodeid.split("::")[0], set()).update(self.current - before)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item):
        yield from self._traced(item, "setup")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        yield from self._traced(item, "call")


@dataclass
class Coverage:
    """Per test: the module's lines it runs, and its duration; per test file: the lines its setups run."""
    lines: dict[str, list[int]]
    setup_lines: dict[str, list[int]]
    seconds: dict[str, float]

    def tests_for(self, first: int, last: int) -> list[str]:
        """Tests that run any of lines first..last, fastest first (a whole file when its fixtures do)."""
        span = set(range(first, last + 1))
        files = {f for f, lines in self.setup_lines.items() if span & set(lines)}
        chosen = [t for t, lines in self.lines.items() if span & set(lines) or t.split("::")[0] in files]
        return sorted(chosen, key=self.seconds.get)


def _fork(body, timeout: float) -> tuple[int | None, float]:
    """Run `body()` (returns an exit code) in a forked child, silenced; (exit code or None on timeout, seconds)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            code = body()
        except BaseException:
            code = 99
        os._exit(int(code))
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), time.monotonic() - start
        if time.monotonic() - start > timeout:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, time.monotonic() - start
        time.sleep(0.02)


# Plain asserts and no plugin autoload: rewriting asserts and loading every installed plugin cost
# ~3 s per child, and a failing plain assert still fails the test.
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-o", "addopts=", "-W", "ignore", "--assert=plain"]


def measure_coverage(module: str) -> tuple[Coverage, float]:
    """Run the module's tests once, unmutated, recording which of its lines each test runs."""
    out = RAW.parent / f"coverage-{module}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def body() -> int:
        recorder = LineRecorder(str(module_path(module)))
        code = pytest.main([*test_files(module), *PYTEST_ARGS], plugins=[recorder])
        out.write_text(json.dumps({"lines": {k: sorted(v) for k, v in recorder.lines.items()},
                                   "setup_lines": {k: sorted(v) for k, v in recorder.setup_lines.items()},
                                   "seconds": recorder.seconds}))
        return code

    code, seconds = _fork(body, timeout=1800)
    if code != 0:
        sys.exit(f"{module}: the unmutated tests fail (exit {code}); fix them before mutating")
    return Coverage(**json.loads(out.read_text())), seconds


def run_mutant(mutant: Mutant, tests: list[str], timeout: float) -> tuple[str, float]:
    """Run `tests` against the mutant in a forked child: killed (a test fails or errors), survived, timeout."""
    def body() -> int:
        sys.meta_path.insert(0, MutantFinder(f"interplab.{mutant.module}", mutated_code(mutant.module, mutant.index)))
        return pytest.main([*tests, "-x", *PYTEST_ARGS])

    code, seconds = _fork(body, timeout)
    return ("timeout" if code is None else "survived" if code == 0 else "killed"), seconds


def read_accepted() -> dict[str, str]:
    if not ACCEPTED.exists():
        return {}
    rows = [line.split("\t", 1) for line in ACCEPTED.read_text().splitlines() if line and not line.startswith("#")]
    return {key: reason.strip() for key, reason in rows}


def kills_of(path: Path) -> dict[str, dict[str, set]]:
    """Per module: every mutant (index, line) of an earlier run, and those it killed."""
    out: dict[str, dict[str, set]] = {}
    for r in json.loads(path.read_text()):
        entry = out.setdefault(r["module"], {"all": set(), "killed": set()})
        entry["all"].add((r["index"], r["line"]))
        if r["outcome"] in ("killed", "timeout"):
            entry["killed"].add((r["index"], r["line"]))
    return out


@dataclass
class Row:
    """One module's line of the RESULTS.md table and its surviving-mutant lines."""
    counts: tuple[int, int, int, int]  # mutants, killed, survived, accepted
    measured: str  # date of the run that measured it
    survivors: list[str]


def module_rows(results: list[dict], accepted: dict[str, str], date: str) -> dict[str, Row]:
    rows = {}
    for module in TESTS:
        found = [r for r in results if r["module"] == module]
        if not found:
            continue
        killed = sum(r["outcome"] in ("killed", "timeout") for r in found)
        ok = sum(r["outcome"] in ("survived", "uncovered") and r["key"] in accepted for r in found)
        survivors = []
        for r in found:
            if r["outcome"] in ("survived", "uncovered"):
                reason = accepted.get(r["key"], "**not accepted: needs a test**")
                if r["outcome"] == "uncovered":
                    reason = "no test runs this line; " + reason
                survivors.append(f"- `{module}` line {r['line']}: `{r['description']}` — {reason}")
        rows[module] = Row((len(found), killed, len(found) - killed - ok, ok), date, survivors)
    return rows


def table_rows(block: str) -> dict[str, Row]:
    """The rows of a table that `markdown` wrote (a row without a `measured` cell dates from the block's first line)."""
    lines = block.splitlines()
    first = next(line for line in lines if line and line != BEGIN)
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] in TESTS:
            rows[cells[0]] = Row(tuple(int(c) for c in cells[1:5]), cells[6] if len(cells) > 6 else first[:10],
                                 [s for s in lines if s.startswith(f"- `{cells[0]}` ")])
    return rows


def markdown(rows: dict[str, Row], header: str) -> str:
    lines = [BEGIN, "", header + " Score = killed / (mutants − accepted); timeouts count as killed. "
             "Each mutant runs the tests that execute its lines.", "",
             "| module | mutants | killed | survived | accepted (equivalent) | score | measured |",
             "|---|---|---|---|---|---|---|"]
    ordered = [(module, rows[module]) for module in TESTS if module in rows]
    totals = [sum(row.counts[i] for _, row in ordered) for i in range(4)]
    for module, row in ordered:
        n, killed, survived, ok = row.counts
        score = killed / max(1, n - ok)
        lines.append(f"| {module} | {n} | {killed} | {survived} | {ok} | {score:.0%} | {row.measured} |")
    lines.append(f"| **all** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} | "
                 f"**{totals[1] / max(1, totals[0] - totals[3]):.0%}** | |")
    lines += ["", "Surviving mutants (`benchmarks/mutants_accepted.tsv` gives the reason for each accepted one):", ""]
    lines += [s for _, row in ordered for s in row.survivors]
    return "\n".join(lines + ["", END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {', '.join(TESTS)})")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout-factor", type=float, default=3.0,
                        help="a mutant times out after this many times the unmutated run, plus 10 s")
    parser.add_argument("--keep-kills", type=Path, metavar="JSON",
                        help="an earlier run's benchmarks/results/mutate.json: its killed mutants count as killed "
                             "and only the rest run again (valid while the modules are unchanged and tests were "
                             "only added since)")
    parser.add_argument("--merge", action="store_true",
                        help="replace the named modules' rows in RESULTS.md's table, keeping the other rows")
    args = parser.parse_args()
    modules = args.modules or list(TESTS)
    unknown = set(modules) - set(TESTS)
    if unknown:
        parser.error(f"unknown modules {sorted(unknown)}; choose from {list(TESTS)}")
    if args.list:
        for module in modules:
            for m in mutants(module):
                print(f"{m.line}\t{m.key}")
        return

    os.environ.update(OMP_NUM_THREADS="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    sys.path.insert(0, str(SRC))
    os.chdir(ROOT)
    for heavy in PRELOAD:  # loaded once, shared by every forked child
        try:
            importlib.import_module(heavy)
        except ImportError:
            pass
    import torch
    torch.set_num_threads(1)

    accepted, results, start = read_accepted(), [], time.monotonic()
    earlier = kills_of(args.keep_kills) if args.keep_kills else {}
    for module in modules:
        coverage, baseline = measure_coverage(module)
        timeout = args.timeout_factor * baseline + 10
        found = mutants(module)
        print(f"{module}: {len(found)} mutants, tests take {baseline:.1f} s (traced)", flush=True)
        everything = sorted(coverage.lines, key=coverage.seconds.get)
        kept = earlier.get(module, {}) if len(earlier.get(module, {}).get("all", ())) == len(found) else {}
        for m in found:
            tests = coverage.tests_for(m.line, m.end_line) if m.in_function else everything
            if (m.index, m.line) in kept.get("killed", ()):
                outcome, seconds = "killed", 0.0
            else:
                outcome, seconds = run_mutant(m, tests, timeout) if tests else ("uncovered", 0.0)
            results.append({**asdict(m), "outcome": outcome, "seconds": round(seconds, 2)})
            if outcome in ("survived", "uncovered"):
                print(f"  {outcome} {m.line}: {m.description}" + ("  (accepted)" if m.key in accepted else ""), flush=True)
    elapsed = time.monotonic() - start
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps(results, indent=1))
    date = time.strftime("%Y-%m-%d")
    how = (f"rerunning only the survivors of {args.keep_kills.name} (--keep-kills)" if args.keep_kills
           else "every mutant")
    rows = module_rows(results, accepted, date)
    text = RESULTS_MD.read_text()
    merge = args.merge and args.modules and BEGIN in text
    if merge:
        rows = {**table_rows(text[text.index(BEGIN):text.index(END)]), **rows}
    scope = f"{', '.join(modules)} only, " if merge else ""
    note = "; the other modules' rows are kept from the runs their `measured` column dates" if merge else ""
    table = markdown(rows, f"{date}, {scope}{how}: {elapsed / 60:.0f} min, one worker{note}.")
    print(table)
    if not args.modules or args.merge:
        if BEGIN in text:
            text = text[:text.index(BEGIN)] + table + text[text.index(END) + len(END):]
        else:
            text += "\n## Mutation testing of the core modules: `benchmarks/mutate.py` (`make mutate`)\n\n" + table + "\n"
        RESULTS_MD.write_text(text)


if __name__ == "__main__":
    main()
