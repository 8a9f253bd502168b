"""Draw the teacher's loss curve against the unigram entropy."""
from interplab.figures.lm import teacher_loss
from interplab.io import provenance, read_json, read_table
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    teacher_loss(read_table(sm.input.history), read_json(sm.input.summary), sm.output[0],
                 provenance({"figure": "teacher_loss"}, inputs=dict(sm.input.items())))
