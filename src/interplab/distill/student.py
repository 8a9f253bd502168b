"""Students (GPT-NeoX of the teacher's depth at a smaller width) and the logit-distillation loss.

The paper's recipe: hidden width d_S, heads = the first of 16, 8, 4, 2, 1 that divides d_S with a
head dimension of at least 16, FFN 4·d_S, rotary 0.25, random init; loss KL(teacher ‖ student) on
logits softened at temperature T, times T² (so gradients keep their scale as T changes), averaged
per token (the authors' code summed over positions; a per-token mean makes floors comparable across
context lengths).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

HEAD_CHOICES = (16, 8, 4, 2, 1)
MIN_HEAD_DIM = 16


def student_heads(width: int) -> int:
    """The first of 16, 8, 4, 2, 1 heads that divides `width` with head dimension ≥ 16 (else 1)."""
    for heads in HEAD_CHOICES:
        if width % heads == 0 and width // heads >= MIN_HEAD_DIM:
            return heads
    return 1


def student_config(teacher: GPTNeoXConfig, width: int) -> GPTNeoXConfig:
    """The teacher's architecture (depth, vocabulary, context, rotary share) at hidden width `width`."""
    config = GPTNeoXConfig(**teacher.to_dict())
    config.update({"hidden_size": width, "num_attention_heads": student_heads(width), "intermediate_size": 4 * width,
                   "hidden_dropout": 0.0, "attention_dropout": 0.0})
    return config


def build_student(teacher: GPTNeoXConfig, width: int, seed: int) -> GPTNeoXForCausalLM:
    """A randomly initialised student; the seed alone fixes its weights."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPTNeoXForCausalLM(student_config(teacher, width))


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(t/T) ‖ softmax(s/T)), summed over the vocabulary and averaged over tokens."""
    vocab = student_logits.shape[-1]
    log_p_teacher = F.log_softmax(teacher_logits.reshape(-1, vocab).float() / temperature, dim=-1)
    log_p_student = F.log_softmax(student_logits.reshape(-1, vocab).float() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="sum") / log_p_student.shape[0]
    return kl * temperature**2
