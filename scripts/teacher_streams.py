"""Tokenise the corpus into fixed-length training and held-out streams, saved with their hash."""
import logging

from interplab.io import provenance, write_json
from interplab.teacher.corpus import documents
from interplab.teacher.streams import StreamSpec, encode_documents, save_streams, split_streams
from interplab.teacher.tokenizer import load_tokenizer
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    plan, cache = sm.params.plan, sm.params.cache
    tokenizer = load_tokenizer(sm.input.tokenizer) if plan.source == "local" else load_tokenizer(plan.name)
    # The local corpus is used whole (the teacher trains on it); a hub corpus is read up to the cache budget.
    budget = None if plan.corpus.source == "stdlib" else cache["train_tokens"] + cache["heldout_tokens"]
    spec = StreamSpec(context_length=plan.teacher.context_length, heldout_tokens=cache["heldout_tokens"],
                      train_tokens=None if budget is None else cache["train_tokens"], seed=plan.stream_seed)
    streams = split_streams(encode_documents(documents(plan.corpus), tokenizer, max_tokens=budget), spec)
    digest = save_streams(sm.output.streams, streams)
    counts = {split: int(rows.numel()) for split, rows in streams.items()}
    logging.info("token streams: %s tokens (train, heldout), sha256 %s", counts, digest)
    write_json(sm.output.record, {"sha256": digest, "tokens": counts, "context_length": spec.context_length,
                                  "corpus": plan.corpus.__dict__, "seed": spec.seed,
                                  "provenance": provenance({"streams": spec.__dict__, "corpus": plan.corpus.__dict__},
                                                           inputs={"streams": sm.output.streams})})
