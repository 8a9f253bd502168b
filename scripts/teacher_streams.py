"""Tokenise the corpus into fixed-length training and held-out streams, saved with their hash."""
import logging

from interplab.io import provenance, write_json
from interplab.teacher.corpus import CorpusSpec, documents
from interplab.teacher.streams import StreamSpec, encode_documents, save_streams, split_streams
from interplab.teacher.tokenizer import load_tokenizer
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p = sm.params
    corpus, spec = CorpusSpec(**p.corpus), StreamSpec(**p.streams)
    tokenizer = load_tokenizer(sm.input.tokenizer) if p.source == "local" else load_tokenizer(p.name)
    budget = None if spec.train_tokens is None else spec.train_tokens + spec.heldout_tokens
    streams = split_streams(encode_documents(documents(corpus), tokenizer, max_tokens=budget), spec)
    digest = save_streams(sm.output.streams, streams)
    counts = {split: int(rows.numel()) for split, rows in streams.items()}
    logging.info("token streams: %s tokens (train, heldout), sha256 %s", counts, digest)
    write_json(sm.output.record, {"sha256": digest, "tokens": counts, "context_length": spec.context_length,
                                  "corpus": p.corpus, "seed": spec.seed,
                                  "provenance": provenance({"streams": p.streams, "corpus": p.corpus},
                                                           inputs={"streams": sm.output.streams})})
