"""The language-model teacher: a corpus found on every machine, its BPE tokenizer, token streams,
a small GPT-NeoX trained with exponential checkpoints, and `load_bridge` for local or hub models."""
