import os
import warnings
from types import SimpleNamespace

import pytest

from interplab.workflow import describe_files, human_size, job


def test_job_routes_output_and_failures_to_the_log(tmp_path):
    log = tmp_path / "logs" / "rule.log"
    smk = SimpleNamespace(log=[str(log)], threads=1)
    with job(smk):
        print("progress line")
    assert "progress line" in log.read_text()
    with pytest.raises(ValueError):
        with job(smk):
            raise ValueError("bad shard")
    text = log.read_text()
    assert "job failed" in text and "ValueError: bad shard" in text


def test_job_log_says_what_it_read_and_wrote(tmp_path):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("a\n1\n")
    log = tmp_path / "job.log"
    smk = SimpleNamespace(log=[str(log)], threads=1, rule="kd_table", wildcards={"trial": "B"}, input=[str(source)],
                          output=[str(target)])
    with job(smk):
        target.write_text("x" * 1500)
    lines = log.read_text().splitlines()
    assert lines[0].endswith(f"kd_table trial=B: reading {source} (4 B)")
    assert f"kd_table trial=B: wrote {target} (1.5 kB) in 0s" in lines[-1]


def test_many_files_are_summarised(tmp_path):
    paths = []
    for i in range(6):
        (tmp_path / "cache" / f"L{i}").mkdir(parents=True)
        (tmp_path / "cache" / f"L{i}" / "shard").write_bytes(b"x" * 400_000)
        paths.append(str(tmp_path / "cache" / f"L{i}"))
    assert describe_files(paths) == f"6 files (2.4 MB) under {tmp_path / 'cache'}"
    mixed = [os.path.relpath(paths[0])] + paths[1:]
    assert describe_files(mixed).startswith("6 files (2.4 MB) under /")
    assert describe_files([]) == "no files"


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_234_567, "1.2 MB"),
                                     (5 * 10**12, "5000.0 GB")])
def test_human_size(n, text):
    assert human_size(n) == text


def test_harmless_library_warnings_are_filtered_by_message_only(tmp_path, recwarn):
    with job(SimpleNamespace(log=[str(tmp_path / "w.log")], threads=1)):
        warnings.warn("The given NumPy array is not writable, and PyTorch does not support it", UserWarning)
        warnings.warn("`torch.jit.script` is deprecated. Please switch to `torch.compile`", FutureWarning)
        warnings.warn("something the job should hear about", UserWarning)
    assert [str(w.message) for w in recwarn] == ["something the job should hear about"]
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
