"""The glue between Snakemake's `snakemake` object and the library: logging and threads.

Scripts stay thin: `with job(snakemake) as sm:` routes stdout/stderr to the rule's log, sets
torch's thread count to the job's threads, quiets library progress bars and harmless warnings,
and hands back the object. The log opens with what the job reads and closes with what it wrote
and how long it took, so no job's log is empty and each says where its numbers went.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sized

from interplab.progress import duration
from interplab.runtime import quiet_libraries, set_threads

log = logging.getLogger(__name__)
LISTED_FILES = 4  # more files than this are summarised as a count, a size and their common folder


def file_size(path: Path) -> int:
    """Bytes of a file, or of every file under a directory (a cache directory is one output)."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


def human_size(n: int) -> str:
    """812 → '812 B', 1_234_567 → '1.2 MB'."""
    value, unit = float(n), "B"
    for bigger in ("kB", "MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def describe_files(paths: Iterable[str]) -> str:
    """'a.csv (1.2 kB), b.png (56.0 kB)' or, for many, '24 files (3.4 MB) under results/kd/B'."""
    paths = [Path(p) for p in paths]
    if not paths:
        return "no files"
    if len(paths) <= LISTED_FILES:
        return ", ".join(f"{p} ({human_size(file_size(p))})" for p in paths)
    common = os.path.commonpath([os.path.abspath(p) for p in paths])  # inputs may mix relative and absolute
    return f"{len(paths)} files ({human_size(sum(file_size(p) for p in paths))}) under {common}"


def job_name(smk: Any) -> str:
    """The rule and its wildcards, e.g. 'kd_measure trial=B layer=01'."""
    wildcards = getattr(smk, "wildcards", None)
    items = wildcards.items() if wildcards is not None else []
    return " ".join([str(getattr(smk, "rule", "job"))] + [f"{k}={v}" for k, v in items])


def log_tables(what: str, **tables: Sized) -> None:
    """One line naming the tables a job drew or computed from and their sizes (a figure job's
    'what it read' in numbers: an empty or truncated input shows up in the log, not only in the plot)."""
    log.info("%s: %s", what, ", ".join(f"{name} {len(table):,} rows" for name, table in tables.items()))


@contextlib.contextmanager
def job(smk: Any) -> Iterator[Any]:
    log_path = smk.log[0] if len(smk.log) else None
    handle = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(log_path, "w", buffering=1)
        stack = contextlib.ExitStack()
        stack.enter_context(contextlib.redirect_stderr(handle))
        stack.enter_context(contextlib.redirect_stdout(handle))
    else:
        stack = contextlib.ExitStack()
    with stack:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        quiet_libraries()
        set_threads(getattr(smk, "threads", 1))
        name, start = job_name(smk), time.monotonic()
        log.info("%s: reading %s", name, describe_files(getattr(smk, "input", [])))
        try:
            yield smk
        except BaseException:
            logging.getLogger("interplab").exception("job failed")  # the traceback belongs in the rule's log
            raise
        else:
            log.info("%s: wrote %s in %s", name, describe_files(getattr(smk, "output", [])),
                     duration(time.monotonic() - start))
        finally:
            if handle:
                handle.flush()
    if handle:
        handle.close()
