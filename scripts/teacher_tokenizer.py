"""Train the local teacher's byte-level BPE tokenizer on the stdlib corpus; record the corpus hash."""
import logging

from interplab.io import atomic_directory, provenance, write_json
from interplab.teacher.corpus import CorpusSpec, corpus_record, documents
from interplab.teacher.tokenizer import train_tokenizer
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    corpus, vocab_size = CorpusSpec(**sm.params.corpus), sm.params.vocab_size
    docs = list(documents(corpus))
    record = corpus_record(docs, corpus)
    logging.info("corpus: %d documents, %d chars, sha256 %s", record["n_documents"], record["n_chars"], record["sha256"])
    tokenizer = train_tokenizer((doc.text for doc in docs), vocab_size)
    with atomic_directory(sm.output.tokenizer) as staging:
        tokenizer.save_pretrained(staging)
    write_json(sm.output.corpus, {**record, "provenance": provenance({"vocab_size": vocab_size})})
