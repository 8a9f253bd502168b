"""Loading the teacher as a plain HF causal LM (students need its logits and config, not hooks)."""

from __future__ import annotations

from transformers import AutoTokenizer, GPTNeoXForCausalLM

from interplab.teacher.bridge import verify_checkpoint


def load_teacher(local_dir: str | None, hub_name: str, revision: str):
    """The local checkpoint directory (hash-verified) when given, else the hub model at `revision`;
    returns (model in eval mode, tokenizer with a pad token for batched probing)."""
    source = local_dir if local_dir else hub_name
    kwargs = {} if local_dir else {"revision": revision}
    if local_dir:
        verify_checkpoint(local_dir)
    model = GPTNeoXForCausalLM.from_pretrained(source, **kwargs).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
