"""A byte-level BPE tokenizer trained with `tokenizers` and saved in HF format.

Byte-level BPE never meets an unknown character, and saving it as a `PreTrainedTokenizerFast`
beside the model weights lets the same TransformerBridge boot code load the local teacher and a
hub Pythia alike. `<|endoftext|>` (id 0, as in Pythia) separates documents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

EOS = "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    if vocab_size < 257:
        raise ValueError(f"vocab_size {vocab_size} is too small: byte-level BPE needs 256 byte tokens plus {EOS}")
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, bos_token=EOS, unk_token=EOS)


def load_tokenizer(name_or_path: str | Path, revision: str | None = None) -> PreTrainedTokenizerFast:
    return AutoTokenizer.from_pretrained(str(name_or_path), revision=revision)
