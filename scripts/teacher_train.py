"""Train the local GPT-NeoX teacher; save HF checkpoints on the exponential schedule and the history."""
import dataclasses
import logging
import time

from interplab.io import provenance, write_json, write_table
from interplab.runtime import resolve_device
from interplab.teacher.streams import load_streams
from interplab.teacher.tokenizer import load_tokenizer
from interplab.teacher.config import TeacherConfig, checkpoint_label
from interplab.teacher.train import save_checkpoint, teacher_summary, train_teacher
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    cfg = TeacherConfig(**sm.params.teacher)
    streams, tokenizer = load_streams(sm.input.streams), load_tokenizer(sm.input.tokenizer)
    prov = provenance(dataclasses.asdict(cfg), inputs={"streams": sm.input.streams}, seed=cfg.seed)
    targets = dict(zip(sm.params.checkpoints, sm.output.checkpoints))

    def save(step, model):
        save_checkpoint(model, tokenizer, targets[checkpoint_label(step, cfg.steps)], {**prov, "step": step})

    start = time.perf_counter()
    history = train_teacher(cfg, streams, tokenizer, resolve_device(sm.params.device), save)
    summary = teacher_summary(history, streams["train"], cfg, sm.wildcards.model, time.perf_counter() - start)
    logging.info("final held-out loss %.3f nats vs unigram entropy %.3f nats (%.3f below); %.0f tokens/s",
                 summary["final_heldout_loss"], summary["unigram_entropy"], summary["below_unigram_entropy"],
                 summary["train_tokens_per_second"])
    write_table(sm.output.history, history, prov)
    write_json(sm.output.summary, {**summary, "provenance": prov})
