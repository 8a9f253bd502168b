"""Binary concepts for Experiment 4, built deterministically from the corpus (no download).

Each concept is a balanced set of short text snippets, label 1 for the concept and 0 for plain code
from the same modules, so a probe must read the concept rather than the topic of a file:

- `docstring`: prose from module, class and function docstrings (the paper's "code vs prose", turned around);
- `comment`: `#` comment lines;
- `base64`: generated base64 strings (the paper's least important concept).

The paper's own concepts (questions, French, code, sports, legal, medical, base64) need hub datasets;
these three exist in the offline corpus and span the same range from common to rare in training text.
"""

from __future__ import annotations

import ast
import base64
import io
import tokenize
from typing import Iterable, Sequence

import numpy as np

from interplab.io import stable_seed
from interplab.teacher.corpus import Document

CONCEPTS = ("docstring", "comment", "base64")
MIN_CHARS = 24


def _docstrings(text: str) -> list[str]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return [doc for doc in (ast.get_docstring(node) for node in nodes) if doc]


def _comments_and_code(text: str) -> tuple[list[str], list[str]]:
    """Comment lines and code lines (no strings spanning lines, no comments) of a module."""
    comments, code_lines, in_string = [], set(), set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                comments.append(token.string)
            elif token.type == tokenize.STRING and token.start[0] != token.end[0]:
                in_string.update(range(token.start[0], token.end[0] + 1))
            elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
                code_lines.add(token.start[0])
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return [], []
    lines = text.splitlines()
    code = [lines[n - 1].strip() for n in sorted(code_lines - in_string)
            if n - 1 < len(lines) and "#" not in lines[n - 1]]
    return comments, code


def _snippets(pieces: Iterable[str], chars: int) -> list[str]:
    """Pieces joined with newlines and cut into snippets of about `chars` characters."""
    out, current = [], ""
    for piece in pieces:
        current = f"{current}\n{piece}" if current else piece
        if len(current) >= chars:
            out.append(current[:chars])
            current = ""
    return [s for s in out if len(s.strip()) >= MIN_CHARS]


def _base64_strings(n: int, chars: int, seed: int) -> list[str]:
    rng = np.random.default_rng(stable_seed("base64-concept", seed))
    return [base64.b64encode(rng.bytes(chars)).decode()[:chars] for _ in range(n)]


def concept_datasets(docs: Sequence[Document], concepts: Sequence[str], n_per_class: int, chars: int,
                     seed: int) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per concept: `n_per_class` snippets with it and as many of plain code without it (labels 1 / 0).
    Every module is parsed once for all concepts."""
    unknown = sorted(set(concepts) - set(CONCEPTS))
    if unknown:
        raise ValueError(f"unknown concept(s) {unknown}: choose from {', '.join(CONCEPTS)}")
    pieces: dict[str, list[str]] = {"docstring": [], "comment": [], "code": []}
    for doc in docs:
        comments, code = _comments_and_code(doc.text)
        pieces["code"] += _snippets(code, chars)
        pieces["comment"] += _snippets(comments, chars)
        pieces["docstring"] += _snippets(_docstrings(doc.text), chars)
    pieces["base64"] = _base64_strings(n_per_class, chars, seed)
    datasets = {}
    for concept in concepts:
        positives, negatives = pieces[concept], pieces["code"]
        if min(len(positives), len(negatives)) < n_per_class:
            raise ValueError(f"concept {concept!r}: the corpus yields {len(positives)} positive and {len(negatives)} "
                             f"negative snippets, fewer than probe.examples_per_class = {n_per_class}; lower it")
        rng = np.random.default_rng(stable_seed("concept-sample", concept, seed))
        texts = [positives[i] for i in rng.choice(len(positives), n_per_class, replace=False)]
        texts += [negatives[i] for i in rng.choice(len(negatives), n_per_class, replace=False)]
        datasets[concept] = (texts, np.array([1] * n_per_class + [0] * n_per_class))
    return datasets
