"""The two model families of the grokking stage, init scaling and per-group weight norms.

- Camelyon17: torchvision ResNet-18 from scratch, 2 classes, unchanged architecture.
- Positive control: the one-layer ReLU transformer of Nanda et al. (2023) for "a b =" → (a+b) mod p
  (d_model 128, 4 heads, d_mlp 512, no LayerNorm, learned positions, untied embed/unembed).

Omnigrok's "expanded initialisation" multiplies every parameter (weights, biases, BN γ/β) by one
factor after the default init. With BatchNorm the conv weights are scale-invariant, so the norms
are logged per group (conv / bn / fc; embed / attn / mlp / unembed) to see where the factor and
the weight decay actually act.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
import torchvision
from torch import nn

from interplab.grok.runs import CAMELYON, RunSpec
from interplab.io import stable_seed

RESNET_BLOCKS = ("layer1", "layer2", "layer3", "layer4")


def resnet18(num_classes: int = 2) -> nn.Module:
    return torchvision.models.resnet18(weights=None, num_classes=num_classes)


class ModularAdditionTransformer(nn.Module):
    """One attention layer and one ReLU MLP on the sequence (a, b, =); logits over the p residues.

    Only the '=' position is read out, and with causal attention it attends to all three tokens,
    so attention and MLP are evaluated for that query alone (the other positions' outputs are
    never used by a one-layer model). Keys and values are linear in embedding + position, so they
    are computed once per vocabulary entry and position and gathered: the same function at a
    fraction of the cost of projecting every sequence (the control trains full batch on CPU).
    """

    def __init__(self, p: int, d_model: int = 128, n_heads: int = 4, d_mlp: int = 512):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.p, self.n_heads, self.d_head = p, n_heads, d_model // n_heads
        self.embed = nn.Embedding(p + 1, d_model)  # token p is '='
        self.pos = nn.Parameter(torch.empty(3, d_model))
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.unembed = nn.Linear(d_model, p, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 1/fan_in) weights, N(0, 1/d_model) embeddings, zero biases (Nanda's initialisation)."""
        d_model = self.pos.shape[1]
        for param in (self.embed.weight, self.pos):
            nn.init.normal_(param, std=1 / math.sqrt(d_model))
        for layer in (self.query, self.key, self.value, self.out, self.mlp_in, self.mlp_out, self.unembed):
            nn.init.normal_(layer.weight, std=1 / math.sqrt(layer.in_features))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch = tokens.shape[0]
        heads = (batch, 3, self.n_heads, self.d_head)
        table = self.embed.weight
        k = (self.key(table)[tokens] + self.key(self.pos)).view(heads)
        v = (self.value(table)[tokens] + self.value(self.pos)).view(heads)
        x_last = table[tokens[:, -1]] + self.pos[-1]
        q = self.query(x_last).view(batch, 1, self.n_heads, self.d_head)
        attn = torch.softmax((q * k).sum(-1) / math.sqrt(self.d_head), dim=1)  # [B, 3, H] over the 3 keys
        resid = x_last + self.out((attn.unsqueeze(-1) * v).sum(1).reshape(batch, -1))
        resid = resid + self.mlp_out(torch.relu(self.mlp_in(resid)))
        return self.unembed(resid)


@torch.no_grad()
def scale_parameters_(model: nn.Module, factor: float) -> None:
    """Multiply every parameter by `factor` (Omnigrok's expanded init); buffers are left alone."""
    for param in model.parameters():
        param.mul_(factor)


def parameter_group(name: str, module: nn.Module) -> str:
    """The norm group of a parameter: conv / bn / fc for ResNets, embed / attn / mlp / unembed otherwise."""
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.BatchNorm2d):
        return "bn"
    if name.startswith("fc."):
        return "fc"
    if name.startswith(("embed.", "pos")):
        return "embed"
    if name.startswith(("query.", "key.", "value.", "out.")):
        return "attn"
    if name.startswith("mlp_"):
        return "mlp"
    if name.startswith("unembed."):
        return "unembed"
    raise ValueError(f"parameter {name!r} belongs to no known norm group")


def _named_parameters_with_modules(model: nn.Module) -> Iterable[tuple[str, nn.Module, torch.Tensor]]:
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            yield (f"{module_name}.{param_name}" if module_name else param_name), module, param


@torch.no_grad()
def group_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the parameters in each group, plus `total` over all of them."""
    squares: dict[str, float] = {}
    for name, module, param in _named_parameters_with_modules(model):
        group = parameter_group(name, module)
        squares[group] = squares.get(group, 0.0) + float(param.double().pow(2).sum())
    squares["total"] = sum(squares.values())
    return {group: math.sqrt(value) for group, value in squares.items()}


@torch.no_grad()
def resnet_block_features(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image features after each ResNet block, averaged over space: layer4 gives the 512-d vector the fc head reads."""
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    features = {}
    for block in RESNET_BLOCKS:
        h = getattr(model, block)(h)
        features[block] = h.mean(dim=(2, 3))
    return features


def build_model(spec: RunSpec) -> torch.nn.Module:
    """The run's architecture with default initialisation."""
    if spec.task == CAMELYON:
        return resnet18(num_classes=2)
    s = spec.setup
    return ModularAdditionTransformer(s.p, s.d_model, s.n_heads, s.d_mlp)


def init_model(spec: RunSpec) -> torch.nn.Module:
    """The run's initial model: seeded default init (shared across regimes), then × init_scale."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stable_seed("grok-init", spec.task, spec.seed))
        model = build_model(spec)
    scale_parameters_(model, spec.regime.init_scale)
    return model
