"""Draw the teacher's loss curve against the unigram entropy."""
from interplab.figures.lm import teacher_loss
from interplab.io import provenance, read_json, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    history, summary = read_table(sm.input.history), read_json(sm.input.summary)
    log_tables(f"teacher loss (final held-out {summary['final_heldout_loss']:.3f} nats, unigram entropy "
               f"{summary['unigram_entropy']:.3f})", history=history)
    teacher_loss(history, summary, sm.output[0], provenance({"figure": "teacher_loss"}, inputs=dict(sm.input.items())))
