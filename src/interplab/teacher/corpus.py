"""Text corpora behind one interface: the running interpreter's standard library (on every
machine, no download) or a streamed hub dataset (for users with network, e.g. the Pile).

The default teacher must train offline, deterministically and reproducibly, so the local corpus
is the top-level `*.py` modules of the interpreter's stdlib read in sorted order, with a hash of
(name, content) pairs recorded: a different Python version gives a different hash, visibly.
"""

from __future__ import annotations

import hashlib
import itertools
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SOURCES = ("stdlib", "hf")


@dataclass(frozen=True)
class Document:
    name: str
    text: str


@dataclass(frozen=True)
class CorpusSpec:
    """stdlib: the interpreter's top-level stdlib modules. hf: `dataset` streamed from the hub."""

    source: str = "stdlib"
    dataset: str = "monology/pile-uncopyrighted"
    split: str = "train"
    text_field: str = "text"
    max_documents: int = 0  # 0: every document; else the first N (quick runs and tests)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"corpus source must be one of {SOURCES}, got {self.source!r}")


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_documents(root: Path | None = None) -> list[Document]:
    """Every top-level `*.py` module of the stdlib, sorted by file name."""
    root = stdlib_root() if root is None else Path(root)
    files = sorted(root.glob("*.py"))
    if not files:
        raise FileNotFoundError(f"no *.py files in {root}: the local corpus needs the interpreter's standard "
                                "library sources (set model.corpus.source: hf to stream a hub dataset instead)")
    return [Document(path.name, path.read_text(encoding="utf-8", errors="replace")) for path in files]


def hf_documents(spec: CorpusSpec) -> Iterator[Document]:
    """Stream `spec.dataset` from the hub in its stored order (needs network; never used by default)."""
    from datasets import load_dataset

    stream = load_dataset(spec.dataset, split=spec.split, streaming=True)
    for index, row in enumerate(stream):
        yield Document(f"{spec.dataset}:{spec.split}:{index}", row[spec.text_field])


def documents(spec: CorpusSpec) -> Iterator[Document]:
    docs = iter(stdlib_documents()) if spec.source == "stdlib" else hf_documents(spec)
    return itertools.islice(docs, spec.max_documents) if spec.max_documents else docs


def corpus_record(docs: list[Document], spec: CorpusSpec) -> dict:
    """What the tokenizer was trained on: source, size and content hash (for provenance)."""
    where = str(stdlib_root()) if spec.source == "stdlib" else f"{spec.dataset}:{spec.split}"
    return {"source": spec.source, "location": where, "n_documents": len(docs),
            "n_chars": sum(len(doc.text) for doc in docs), "sha256": corpus_sha256(docs)}


def corpus_sha256(docs: list[Document]) -> str:
    """Hash of the documents' names and texts in order: two corpora hash equal only if identical."""
    digest = hashlib.sha256()
    for doc in docs:
        for part in (doc.name, doc.text):
            data = part.encode("utf-8", errors="replace")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
    return digest.hexdigest()
