"""Atomic writes, hashing, stable seeds and provenance records shared by every stage.

A job killed mid-write must never leave a file that looks finished, so every writer goes through
`atomic_path`: write to a temporary sibling, then rename over the target in one step.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import pandas as pd

PathLike = str | os.PathLike
PROVENANCE_KEY = b"interplab.provenance"
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes owner-only files; give the usual umask-derived mode
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield an empty staging directory beside `path`; it replaces `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it owner-only; the result should read like any directory
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_json(path: PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_table(path: PathLike, frame: pd.DataFrame, provenance: Mapping[str, Any] | None = None) -> None:
    """Write a DataFrame as parquet or CSV (by suffix), atomically, with its provenance.

    Parquet keeps the provenance in its schema metadata; a CSV gets a `<name>.provenance.json`
    sidecar, because CSV has nowhere else to put it.
    """
    suffix = Path(path).suffix
    if suffix not in (".parquet", ".csv"):
        raise ValueError(f"unknown table format {suffix!r} for {path}: use .parquet or .csv")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if provenance is not None:
                meta = dict(table.schema.metadata or {})
                meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True, default=_json_default).encode()
                table = table.replace_schema_metadata(meta)
            pq.write_table(table, tmp)
        else:
            frame.to_csv(tmp, index=False)
    if suffix == ".csv" and provenance is not None:
        write_json(f"{path}.provenance.json", provenance)


class GrowingCsv:
    """A CSV that grows while its job runs, so a long job's table can be read (or survive a crash)
    before the job ends.

    `rewrite` replaces the file atomically with the header and a known prefix of rows (a resumed
    job drops the rows it is about to recompute, so the file ends byte-identical to an uninterrupted
    run's); `append` adds whole rows in one write. Rows are formatted as `write_table` formats the
    finished table, so the final atomic write changes nothing but the provenance sidecar.
    """

    def __init__(self, path: PathLike, columns: list[str]) -> None:
        self.path, self.columns = Path(path), list(columns)

    def rewrite(self, rows: list[list[Any]]) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(self._text(rows, header=True))

    def append(self, rows: list[list[Any]]) -> None:
        if rows:
            with open(self.path, "a") as handle:
                handle.write(self._text(rows, header=False))

    def _text(self, rows: list[list[Any]], header: bool) -> str:
        return pd.DataFrame(rows, columns=self.columns).to_csv(index=False, header=header)


def read_provenance(path: PathLike) -> dict | None:
    """The provenance written with a table (parquet metadata or CSV sidecar), or None."""
    if Path(path).suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        return json.loads(meta[PROVENANCE_KEY]) if PROVENANCE_KEY in meta else None
    sidecar = Path(f"{path}.provenance.json")
    return read_json(sidecar) if sidecar.exists() else None


def read_table(path: PathLike) -> pd.DataFrame:
    suffix = Path(path).suffix
    return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class IntegrityError(RuntimeError):
    """A file's bytes are not the ones recorded when it was written; the message names it and the fix."""


def verify_sha256(path: PathLike, expected: str, rebuild: str) -> None:
    """Raise IntegrityError unless `path` exists and hashes to `expected` (`rebuild` says how to remake it)."""
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"{path} is missing; {rebuild}")
    digest = sha256_file(path)
    if digest != expected:
        raise IntegrityError(f"{path} is corrupt: sha256 {digest[:12]}… does not match the recorded "
                             f"{expected[:12]}…; {rebuild}")


def load_tensors(path: PathLike, expected_sha256: str | None, rebuild: str) -> dict:
    """A safetensors file's tensors, hash-checked when a hash was recorded; an unreadable file is named."""
    from safetensors.torch import load_file

    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256, rebuild)
    try:
        return load_file(str(path))
    except Exception as error:  # SafetensorError, OSError: say which file, and how to get a good one
        raise IntegrityError(f"{path} cannot be read ({error}); {rebuild}") from None


def check_finite(tensor: Any, what: str, fix: str = "rebuild or fix what produced it") -> None:
    """Raise FloatingPointError naming `what` if a tensor holds NaN or Inf: bad data must stop a job,
    not train an SAE to NaN and exit 0."""
    import torch

    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise FloatingPointError(f"{what} holds {bad} non-finite value(s) (NaN or Inf) of {finite.numel()}; "
                                 f"nothing was written; {fix}")


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-able object, independent of key order."""
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed derived from the parts, the same on every machine and Python run."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(config: Mapping[str, Any], inputs: Mapping[str, PathLike] | None = None, **extra: Any) -> dict:
    """What made an artifact: the config subset, input hashes, package versions and git commit."""
    from interplab import __version__

    return {
        "config": config,
        "config_sha256": sha256_json(config),
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in (inputs or {}).items()},
        "interplab_version": __version__,
        "torch_version": _package_version("torch"),
        "python_version": platform.python_version(),
        "git_commit": git_commit(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _package_version(name: str) -> str | None:
    """An installed package's version without importing it (figure jobs never load torch)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
