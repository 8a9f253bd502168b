"""Compile a C source shipped with interplab once per machine, and load it with ctypes.

The library is built with the system C compiler (`$CC`, else `cc`) for the CPU it runs on
(-march=native; `$INTERPLAB_CFLAGS` replaces the flags, e.g. to test a portable build) and cached
under `$INTERPLAB_NATIVE_CACHE` (default ~/.cache/interplab/native), keyed by the source, the
compiler, the flags and the CPU's feature flags, so nodes of a cluster that share a home directory
but differ in CPU each get their own build. Concurrent jobs may build at once: each writes a
private file and renames it into place.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

FLAG_SETS = (["-O3", "-march=native"], ["-O3"])  # the second for compilers or CPUs without -march=native


class NativeUnavailable(RuntimeError):
    """The C source could not be compiled or loaded here."""


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "interplab" / "native"
    return Path(os.environ.get("INTERPLAB_NATIVE_CACHE", default))


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {platform.processor()} {flags.strip()}"


def _compiler_version(compiler: str) -> str:
    try:
        result = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NativeUnavailable(f"no C compiler: `{compiler} --version` failed ({err}); install gcc or set $CC") \
            from err
    return result.stdout.strip()


@functools.cache
def load(source_name: str) -> ctypes.CDLL:
    """The compiled library of src/interplab/<source_name>, built on first use; NativeUnavailable if it cannot be."""
    source = Path(__file__).with_name(source_name)
    compiler = os.environ.get("CC", "cc")
    flag_sets = (os.environ["INTERPLAB_CFLAGS"].split(),) if "INTERPLAB_CFLAGS" in os.environ else FLAG_SETS
    key = hashlib.sha256(
        b"\0".join([source.read_bytes(), _compiler_version(compiler).encode(), _cpu_signature().encode(),
                    repr(flag_sets).encode()])
    ).hexdigest()[:16]
    library = cache_dir() / f"{source.stem}-{key}.so"
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        errors = []
        for flags in flag_sets:
            fd, partial = tempfile.mkstemp(suffix=".so", dir=library.parent)
            os.close(fd)
            result = subprocess.run([compiler, *flags, "-fPIC", "-shared", "-o", partial, str(source)],
                                    capture_output=True, text=True)
            if result.returncode == 0:
                os.replace(partial, library)
                break
            os.unlink(partial)
            errors.append(f"{compiler} {' '.join(flags)}: {result.stderr.strip()}")
        else:
            raise NativeUnavailable(f"compiling {source.name} failed:\n" + "\n".join(errors))
    try:
        return ctypes.CDLL(str(library))
    except OSError as err:
        raise NativeUnavailable(f"loading {library} failed ({err}); delete it to rebuild") from err
