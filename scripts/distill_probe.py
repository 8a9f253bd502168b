"""Probe binary concepts on the teacher and every student at the same relative depth."""
import logging

from transformers import GPTNeoXForCausalLM

from interplab.distill.concepts import concept_datasets
from interplab.distill.probe import probe_models
from interplab.distill.teacher import load_teacher
from interplab.io import provenance, write_table
from interplab.runtime import resolve_device
from interplab.teacher.bridge import verify_checkpoint
from interplab.teacher.corpus import CorpusSpec, documents
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p, probe = sm.params, sm.params.probe
    teacher, tokenizer = load_teacher(sm.input.get("teacher"), p.teacher, p.revision)
    models = {"teacher": (teacher.config.hidden_size, teacher)}
    for name, folder in zip(p.students, sm.input.students):
        verify_checkpoint(folder)
        student = GPTNeoXForCausalLM.from_pretrained(folder)
        models[name] = (student.config.hidden_size, student)
    datasets = concept_datasets(list(documents(CorpusSpec(**p.corpus))), probe["concepts"],
                                probe["examples_per_class"], probe["snippet_chars"], probe["seed"])
    table = probe_models(models, tokenizer, datasets, p.layer, probe["max_tokens"], probe["test_fraction"],
                         probe["seed"], probe["batch_size"], resolve_device(p.device))
    logging.info("probe accuracy:\n%s", table.pivot(index="model", columns="concept", values="accuracy").to_string())
    write_table(sm.output[0], table, provenance({"probe": probe, "layer": p.layer, "corpus": p.corpus},
                                                inputs={name: f"{folder}/model.safetensors"
                                                        for name, folder in zip(p.students, sm.input.students)}))
