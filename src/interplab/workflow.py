"""The glue between Snakemake's `snakemake` object and the library: logging and threads.

Scripts stay thin: `with job(snakemake) as sm:` routes stdout/stderr to the rule's log, sets
torch's thread count to the job's threads, and hands back the object.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any, Iterator

from interplab.runtime import set_threads


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
        set_threads(getattr(smk, "threads", 1))
        try:
            yield smk
        except BaseException:
            logging.getLogger("interplab").exception("job failed")  # the traceback belongs in the rule's log
            raise
        finally:
            if handle:
                handle.flush()
    if handle:
        handle.close()
