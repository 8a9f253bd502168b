from types import SimpleNamespace

import pytest

from interplab.workflow import job


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
