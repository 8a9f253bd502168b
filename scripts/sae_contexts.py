"""Max-activating contexts of one trial's final SAEs at the primary checkpoint: a JSON per layer and
the trial's HTML feature browser."""
import logging
from pathlib import Path

from interplab.activations import ActivationCache, hook_name
from interplab.io import atomic_path, provenance, write_json
from interplab.sae.contexts import (ContextSpec, activations_at, browser_html, choose_latents, context_rows, feature_records,
                                    scan)
from interplab.sae.export import load_sae
from interplab.teacher.streams import load_streams
from interplab.teacher.tokenizer import load_tokenizer
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p, w = sm.params, sm.wildcards
    spec = ContextSpec(**p.contexts)
    tokenizer = load_tokenizer(sm.input.tokenizer) if p.source == "local" else load_tokenizer(p.name)
    heldout = load_streams(sm.input.streams)["heldout"]
    pages = {}
    for layer, cache_dir, weights, out in zip(p.layers, sm.input.caches, sm.input.weights, sm.output.records):
        cache, sae = ActivationCache(cache_dir, split="heldout"), load_sae(Path(weights).parent)
        if cache.n_tokens > heldout.numel():
            raise ValueError(f"{cache_dir} holds {cache.n_tokens} held-out rows but the token stream only "
                             f"{heldout.numel()}: rebuild the cache from these streams")
        result = scan(sae, cache.in_order(), spec.examples)
        latents = choose_latents(result, spec)
        rows = context_rows(result, latents, heldout.shape[1], spec.window)
        at_rows = activations_at(sae, cache.in_order(), rows, [i for i, _ in latents])
        records = feature_records(result, latents, heldout, lambda i: tokenizer.decode([i]), spec.window, at_rows)
        logging.info("layer %d: %d latents (%d alive of %d), %d contexts from %d held-out tokens", layer, len(records),
                     int((result.fires > 0).sum()), len(result.fires), sum(len(r["activations"]) for r in records),
                     result.n_tokens)
        write_json(out, {"modelId": p.model_name, "layer": f"{layer}-res", "hook_name": hook_name(layer),
                         "trial": w.trial, "revision": p.ckpt, "snapshot": "final", "features": records,
                         "provenance": provenance({"contexts": p.contexts}, inputs={"sae": weights,
                                                                                    "cache": f"{cache_dir}/manifest.json"})})
        pages[f"layer {layer}"] = records
    with atomic_path(sm.output.browser) as tmp:
        tmp.write_text(browser_html(f"Trial {w.trial}: SAE features of {p.model_name} ({p.ckpt})", pages))
