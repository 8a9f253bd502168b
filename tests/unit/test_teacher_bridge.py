"""load_bridge: the TransformerBridge's resid_post is the HF model's residual stream."""
import pytest
import torch
from transformers import GPTNeoXForCausalLM

from interplab.teacher.bridge import BridgeSpec, load_bridge
from interplab.teacher.config import local_checkpoint_dir
from tiny_lm import TINY, make_tiny_teacher


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path, _ = make_tiny_teacher(tmp_path_factory.mktemp("bridge"))
    return path


def test_resid_post_equals_hf_hidden_states(tiny):
    bridge = load_bridge(BridgeSpec(source="local", name=str(tiny)))
    hf = GPTNeoXForCausalLM.from_pretrained(tiny, attn_implementation="eager").eval()
    ids = torch.randint(0, TINY.vocab_size, (3, TINY.context_length), generator=torch.Generator().manual_seed(0))
    last_block = {}
    hf.gpt_neox.layers[-1].register_forward_hook(lambda mod, args, out: last_block.setdefault("out", out))
    with torch.inference_mode():
        _, cache = bridge.run_with_cache(ids)
        hidden = hf(ids, output_hidden_states=True).hidden_states
    # hidden_states[L + 1] is block L's output, except the last entry, which has the final LayerNorm
    # applied; the last block's raw output comes from a forward hook instead.
    expected = [hidden[layer + 1] for layer in range(TINY.n_layers - 1)] + [last_block["out"]]
    for layer, want in enumerate(expected):
        want = want[0] if isinstance(want, tuple) else want
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_resid_post"], want, rtol=1e-5, atol=1e-5)


def test_missing_local_directory_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HF model directory at .*nothing-here"):
        load_bridge(BridgeSpec(source="local", name=str(tmp_path / "nothing-here")))


def test_spec_and_revision_labels_are_checked(tmp_path):
    assert local_checkpoint_dir(tmp_path, "final") == tmp_path / "final"
    assert local_checkpoint_dir(tmp_path, "step64") == tmp_path / "ckpt-64"
    with pytest.raises(ValueError, match="neither 'final' nor 'step<N>'"):
        local_checkpoint_dir(tmp_path, "main")
    with pytest.raises(ValueError, match="bridge source"):
        BridgeSpec(source="s3", name="x")
