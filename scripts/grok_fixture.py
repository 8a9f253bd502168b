"""Write the synthetic five-hospital Camelyon17 fixture in the WILDS layout."""
import logging

from interplab.grok.fixture import FixtureConfig, write_fixture
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    params = dict(sm.params.fixture)
    cfg = FixtureConfig(**{**params, "shortcut_hospitals": tuple(params["shortcut_hospitals"])})
    meta = write_fixture(sm.output[0], cfg)
    logging.info("fixture: %d patches of %d px; per hospital and split:\n%s", len(meta), cfg.image_size,
                 meta.groupby(["center", "split", "tumor"]).size().to_string())
