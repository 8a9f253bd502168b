"""Distil the teacher into one student (width, seed); save it as an HF directory with its history."""
import logging

from interplab.distill.teacher import load_teacher
from interplab.distill.train import DistillConfig, measured_floor, train_student
from interplab.io import provenance, sha256_file, sha256_json, write_table
from interplab.runtime import resolve_device
from interplab.teacher.bridge import WEIGHTS_FILE
from interplab.teacher.streams import load_streams
from interplab.teacher.train import save_checkpoint
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p = sm.params
    cfg = DistillConfig(**{**p.student, "betas": tuple(p.student["betas"])})
    teacher, _ = load_teacher(sm.input.get("teacher"), p.teacher, p.revision)
    inputs = {"streams": sm.input.streams, **({"teacher": f"{sm.input.teacher}/{WEIGHTS_FILE}"}
                                              if "teacher" in sm.input.keys() else {})}
    data = sha256_json({name: sha256_file(path) for name, path in inputs.items()})
    run = train_student(cfg, teacher, load_streams(sm.input.streams), p.work_dir, resolve_device(p.device), data)
    floor = measured_floor(run.history, cfg.floor_fraction)
    logging.info("width %d seed %d: measured floor %.4f nats (resumed from step %d)", cfg.width, cfg.seed, floor,
                 run.resumed_from_step)
    prov = provenance(p.student, inputs=inputs, seed=cfg.seed, teacher=p.teacher, revision=p.revision)
    save_checkpoint(run.student, None, sm.output.student, prov)
    write_table(sm.output.history, run.history.assign(width=cfg.width, seed=cfg.seed), prov)
