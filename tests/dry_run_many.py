"""Dry-run the workflow once per config file, all in one Python process (Snakemake and torch are
imported once, so each dry run costs about a second). Usage, from a workflow directory:

    python dry_run_many.py out.json config1.yaml config2.yaml ...

writes [{"config": path, "ok": bool, "output": text}, ...]; each config replaces config.yaml whole.
"""
import json
import os
import sys
import tempfile

from snakemake.cli import args_to_api, parse_args


def dry_run(configfile: str) -> tuple[bool, str]:
    """One `snakemake -n all --configfile F --replace-workflow-config`, its stdout and stderr captured at the fd level."""
    with tempfile.TemporaryFile(mode="w+") as capture:
        saved = os.dup(1), os.dup(2)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(capture.fileno(), 1), os.dup2(capture.fileno(), 2)
        try:
            parser, args = parse_args(["-n", "all", "--cores", "1", "--configfile", configfile,
                                       "--replace-workflow-config"])
            ok = bool(args_to_api(args, parser))
        except SystemExit as exit_:
            ok = exit_.code in (0, None)
        except Exception as error:  # noqa: BLE001 (reported, the loop goes on)
            ok, _ = False, print(f"{type(error).__name__}: {error}")
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
        capture.seek(0)
        return ok, capture.read()


if __name__ == "__main__":
    results = [dict(zip(("config", "ok", "output"), (path, *dry_run(path)))) for path in sys.argv[2:]]
    with open(sys.argv[1], "w") as handle:
        json.dump(results, handle)
