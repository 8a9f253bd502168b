"""SAE training logic by value: the learning-rate schedule, the logged statistics of one step, the
clip, the alive window, the initialisation from the stream's first tokens, the trainer's log steps,
and the L1 policies' validation and controller arithmetic at their boundaries."""
import dataclasses
import math

import pytest
import torch

from interplab.sae.l1 import AdaptiveL1, L1Policy, LambdaController
from interplab.sae.model import SparseAutoencoder, initial_b_pre, normalization_scale
from interplab.sae.trainer import NEVER_FIRED, FusedStep, SAETrainer, TrainConfig
from interplab.synthetic import InMemorySource


pytestmark = pytest.mark.usefixtures("one_thread")


def config(**overrides) -> TrainConfig:
    base = dict(d_in=2, d_sae=3, l1=L1Policy("sum", 0.5), training_tokens=40, batch_size=4)
    return TrainConfig(**{**base, **overrides})


# --------------------------------------------------------------------------------------- schedule
def test_lr_is_constant_then_decays_linearly_to_its_last_step():
    cfg = config(lr=1.0, lr_decay_fraction=0.5)  # 10 steps, the last 5 decay
    assert cfg.n_steps == 10
    assert [cfg.lr_at(s) for s in range(1, 11)] == pytest.approx([1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    assert config(lr=1.0, lr_decay_fraction=0.05).lr_at(10) == 1.0, "under one decay step: constant"
    one_and_a_half = config(lr=1.0, lr_decay_fraction=0.15)
    assert (one_and_a_half.lr_at(9), one_and_a_half.lr_at(10)) == pytest.approx((1.0, 1 / 1.5))
    with pytest.raises(ValueError, match="below one batch"):
        config(training_tokens=3)
    assert config(training_tokens=4).n_steps == 1


def test_fingerprint_ignores_only_the_device_and_compilation():
    cfg = config()
    assert cfg.fingerprint("data") == config(device="meta", compile=True).fingerprint("data")
    assert cfg.fingerprint("data") != cfg.fingerprint("other data")
    assert cfg.fingerprint("data") != config(lr=1e-3).fingerprint("data")


# ------------------------------------------------------------------------------------- one step
def hand_sae() -> SparseAutoencoder:
    """W_enc = I (2 latents of 3 used), decoder rows of norm 2, 1 and 3, b_pre = (1, 0)."""
    sae = SparseAutoencoder(2, 3)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        sae.W_dec.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]]))
        sae.b_pre.copy_(torch.tensor([1.0, 0.0]))
    return sae


def test_logged_statistics_of_one_step_by_hand():
    sae, cfg = hand_sae(), config(batch_size=2, training_tokens=2, l1=L1Policy("mean", 0.5))
    step = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1), cfg)
    x = torch.tensor([[2.0, 1.0], [0.0, -1.0]])
    # x − b_pre = (1, 1), (−1, −1) → z = (1, 1, 0), (0, 0, 0) → x̂ = (2+1, 1), (1, 0) → errors (1, 0), (1, 1)
    mse, l1, penalty, loss, l0, lam = step.forward_backward(x, 1, True).tolist()
    assert mse == pytest.approx(3 / 4)
    assert l1 == pytest.approx((1 * 2 + 1 * 1) / 3 / 2)  # Σ z·‖d‖ = 3, mean form /F = 3, over B = 2 tokens
    assert (penalty, loss, l0, lam) == pytest.approx((0.5 * 0.5, 0.75 + 0.25, 1.0, 0.5))
    assert step.last_fired.tolist() == [1, 1, NEVER_FIRED], "latents that fired in the batch are marked"


def test_step_clips_the_global_gradient_norm_before_the_update():
    sae, cfg = hand_sae(), config(batch_size=2, training_tokens=2, grad_clip=0.5)
    before = [p.detach().clone() for p in sae.parameters()]
    step = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=1.0), LambdaController(cfg.l1), cfg)
    step(torch.tensor([[20.0, 10.0], [0.0, -10.0]]), 1, False)
    moved = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(sae.parameters(), before)))
    assert moved.item() == pytest.approx(0.5, rel=1e-5), "SGD with lr 1 moves by exactly the clipped norm"


def test_fraction_alive_counts_latents_fired_within_the_window():
    cfg = config(d_sae=4, batch_size=100, training_tokens=100, alive_window_tokens=1000)  # a 10-step window
    sae = SparseAutoencoder(2, 4)
    step = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1), cfg)
    step.last_fired.copy_(torch.tensor([10, 11, 20, NEVER_FIRED]))
    assert step.fraction_alive(20).item() == 0.5  # fired after step 10: latents 1 and 2
    short = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1),
                      config(d_sae=4, batch_size=100, training_tokens=100, alive_window_tokens=10))
    short.last_fired.copy_(torch.tensor([19, 20, 20, NEVER_FIRED]))
    assert short.fraction_alive(20).item() == 0.5, "a window under one batch still covers the current step"
    uneven = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1),
                       config(d_sae=4, batch_size=300, training_tokens=300, alive_window_tokens=1000))
    uneven.last_fired.copy_(torch.tensor([16, 17, 18, 20]))
    assert uneven.fraction_alive(20).item() == 0.5, "1000 tokens at 300 per step: steps 18–20 only"


def test_resampling_reaims_only_the_silent_latents_at_a_batch_input():
    cfg = config(batch_size=2, training_tokens=8, resample_every_tokens=4, resample_until=0.5)  # every 2 steps
    assert [s for s in range(1, 5) if cfg.resamples_at(s)] == [2], "every 2 steps, up to half of the 4 steps"
    assert not config(batch_size=2, training_tokens=8).resamples_at(2), "0 tokens: never"
    with pytest.raises(ValueError, match="resample.every_tokens"):
        config(batch_size=2, training_tokens=8, resample_every_tokens=1)
    sae = hand_sae()
    with torch.no_grad():
        sae.W_enc[:, 2] = torch.tensor([0.5, 0.5])  # latent 2 fires at step 1, so it has Adam moments to clear
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-3)
    step = FusedStep(sae, optimizer, LambdaController(cfg.l1), cfg)
    x = torch.tensor([[2.0, 1.0], [4.0, -3.0]])
    step(x, 1, False)
    assert optimizer.state[sae.W_dec]["exp_avg_sq"][2].any()
    before = {k: v.detach().clone() for k, v in sae.state_dict().items()}
    step.last_fired.copy_(torch.tensor([4, 3, 2]))  # at step 4 with a 2-step window, latent 2 is silent
    assert step.resample_dead(x, 4) == 1
    centred = x - before["b_pre"]
    unit = centred / centred.norm(dim=1, keepdim=True)
    row = int(torch.argmax((sae.W_dec[2] @ unit.T).abs()))
    expected_dec = unit[row] * before["W_dec"][:2].norm(dim=1).mean()
    expected_enc = unit[row] * 0.2 * before["W_enc"][:, :2].norm(dim=0).mean()
    assert torch.allclose(sae.W_dec[2], expected_dec) and torch.allclose(sae.W_enc[:, 2], expected_enc)
    assert sae.b_enc[2].item() == 0.0 and step.last_fired.tolist() == [4, 3, 4]
    for key in ("W_enc", "W_dec", "b_enc", "b_pre"):  # the alive latents and b_pre are untouched
        keep = before[key] if key == "b_pre" else (before[key][:, :2] if key == "W_enc" else before[key][:2])
        now = getattr(sae, key).detach()
        assert torch.equal(keep, now if key == "b_pre" else (now[:, :2] if key == "W_enc" else now[:2])), key
    for param, index in ((sae.W_enc, (slice(None), 2)), (sae.W_dec, 2), (sae.b_enc, 2)):
        state = optimizer.state[param]
        assert not state["exp_avg"][index].any() and not state["exp_avg_sq"][index].any()
        assert state["exp_avg_sq"].any(), "only the resampled latent's moments are zeroed"
    assert step.resample_dead(x, 4) == 0, "a latent just resampled counts as fired"


def test_ghost_grads_match_autograd_of_the_ghost_loss_on_the_dead_latents_only():
    """The ghost loss written directly (Anthropic's form): dead latents' exp(pre-activation) decode to
    g, scaled to half the residual's norm, ‖s·g − r‖² weighted to equal the MSE; s, the weight and r
    are constants. Its autograd gradient must be what ghost_backward adds, on the dead latents'
    parameters, and nothing may reach b_pre or a live latent."""
    torch.manual_seed(0)
    batch, d_in, d_sae = 6, 3, 5
    cfg = config(d_in=d_in, d_sae=d_sae, batch_size=batch, training_tokens=batch * 8, ghost_window_tokens=batch * 2)
    assert cfg.ghost_window_steps == 2
    sae = SparseAutoencoder(d_in, d_sae)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p))
    step = FusedStep(sae, torch.optim.SGD(sae.parameters(), lr=0.0), LambdaController(cfg.l1), cfg)
    x = torch.randn(batch, d_in)
    step.forward_backward(x, 8, False)
    before = {name: p.grad.clone() for name, p in sae.named_parameters()}
    step.last_fired.copy_(torch.tensor([8, 6, 7, NEVER_FIRED, 8]))  # silent for ≥ 2 steps at step 8: 1 and 3
    step.ghost_backward(8)
    assert step.ghost_latents.tolist() == [1, 3]

    dead = torch.tensor([1, 3])
    params = {name: p.detach().clone().requires_grad_() for name, p in sae.named_parameters()}
    with torch.no_grad():
        residual = x - sae(x)[0]
    pre = (x - params["b_pre"].detach()) @ params["W_enc"][:, dead] + params["b_enc"][dead]
    g = torch.exp(pre) @ params["W_dec"][dead]
    scale = (residual.norm(dim=1, keepdim=True) / (2 * g.norm(dim=1, keepdim=True))).detach()
    squared = ((scale * g - residual) ** 2).sum()
    weight = (residual.square().sum() / squared).detach()
    (weight * squared / (batch * d_in)).backward()
    for name in ("W_enc", "b_enc", "W_dec"):
        added = getattr(sae, name).grad - before[name]
        assert torch.allclose(added, params[name].grad, rtol=1e-4, atol=1e-6), name
    assert torch.equal(sae.b_pre.grad, before["b_pre"]), "ghost grads never move the shared b_pre"
    live = torch.tensor([0, 2, 4])
    assert torch.equal(sae.W_enc.grad[:, live], before["W_enc"][:, live])
    assert torch.equal(sae.W_dec.grad[live], before["W_dec"][live])
    with pytest.raises(ValueError, match="ghost_grads.window_tokens"):
        config(ghost_window_tokens=1)


# ------------------------------------------------------------------------------ trainer behaviour
def stream(n=512, d=2, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * 3 + 1


def test_initialisation_reads_scale_and_b_pre_from_the_first_tokens(tmp_path):
    cfg = config(batch_size=8, training_tokens=64, buffer_tokens=64, normalize_tokens=24, b_pre_init_tokens=16,
                 b_pre_init="mean", lr=0.0)
    trainer = SAETrainer(cfg, InMemorySource(stream()), tmp_path)
    samples = torch.cat([batch for _, batch in zip(range(3), trainer.group._stream())])  # ⌈max(24, 16)/8⌉ batches
    assert trainer.train().resumed_from_step == 0  # lr 0: the weights keep their initial values
    assert trainer.input_scale == pytest.approx(normalization_scale(samples[:24]))
    torch.testing.assert_close(trainer.sae.b_pre.detach(), initial_b_pre(samples[:16] * trainer.input_scale, "mean"))
    plain = SAETrainer(config(batch_size=8, training_tokens=64, buffer_tokens=64, normalize_activations="none"),
                       InMemorySource(stream()), tmp_path / "plain")
    plain.train()
    assert plain.input_scale == 1.0


def test_trainer_logs_step_one_every_log_every_and_snapshots_and_decays_lr(tmp_path):
    cfg = config(batch_size=8, training_tokens=8 * 25, buffer_tokens=64, log_every=10, snapshot_tokens=(8 * 7,),
                 normalize_tokens=16, b_pre_init_tokens=16, lr=1e-2, lr_decay_fraction=0.2)
    trainer = SAETrainer(cfg, InMemorySource(stream()), tmp_path)
    run = trainer.train()
    assert run.log["step"].tolist() == [1, 7, 10, 20, 25]
    assert (run.log["tokens"] == run.log["step"] * 8).all()
    assert [(s.name, s.step, s.tokens) for s in run.snapshots] == [("56", 7, 56), ("final", 25, 200)]
    assert run.snapshots[0].input_scale == trainer.input_scale != 1.0
    assert trainer.member.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.lr_at(25)) and cfg.lr_at(25) < cfg.lr
    assert run.log["lambda"].tolist() == pytest.approx([0.5] * 5)


# ------------------------------------------------------------------------------------ L1 policies
@pytest.mark.parametrize("kwargs", [
    dict(bounds=(0.0, 1.0)), dict(bounds=(1.0, 1.0)), dict(rate=0.0), dict(rate=1.5), dict(ema=1.0), dict(ema=-0.1),
    dict(target_l0=0.0), dict(update_interval=0), dict(warmup_steps=-1), dict(horizon=-1.0),
])
def test_adaptive_l1_rejects_each_bad_setting(kwargs):
    with pytest.raises(ValueError):
        AdaptiveL1(**{"target_l0": 5.0, **kwargs})


def test_adaptive_l1_accepts_its_boundary_values():
    AdaptiveL1(target_l0=5.0, rate=1.0, ema=0.0, update_interval=1, warmup_steps=0, horizon=0.0, bounds=(1e-9, 2e-9))
    AdaptiveL1(target_l0=0.5)  # under one active latent per token is a valid target
    L1Policy("sum", 0.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        L1Policy("sum", -1e-9)
    with pytest.raises(ValueError, match="unknown L1 form"):
        L1Policy("max", 1.0)
    assert (L1Policy("sum", 1.0).per_feature_weight(8), L1Policy("mean", 1.0).per_feature_weight(8)) == (1.0, 0.125)


def test_controller_ema_and_trend_by_hand():
    policy = L1Policy("sum", 1e-3, AdaptiveL1(target_l0=10, rate=0.5, update_interval=2, ema=0.5, horizon=4,
                                              warmup_steps=0, bounds=(1e-6, 1.0)))
    controller = LambdaController(policy)
    assert controller.wants_l0(2) and not controller.wants_l0(3)
    controller.update(2, torch.tensor(40.0))  # first L0: the EMA starts at it, slope 0
    # predicted = log(40/10) + 0 = 1.386 → clipped to 1 → λ·e^0.5
    assert controller.value.item() == pytest.approx(1e-3 * math.exp(0.5), rel=1e-6)
    assert controller.l0_ema.item() == pytest.approx(40.0)
    controller.update(4, torch.tensor(8.0))  # EMA = 0.5·40 + 0.5·8 = 24, slope log(24/40)
    slope = math.log(24 / 40)
    predicted = math.log(24 / 10) + slope * 4 / 2  # horizon in steps / update interval = 2 updates
    assert controller.l0_ema.item() == pytest.approx(24.0)
    assert controller.slope.item() == pytest.approx(slope, rel=1e-6)
    assert controller.value.item() == pytest.approx(1e-3 * math.exp(0.5) * math.exp(0.5 * predicted), rel=1e-5)
    state = controller.state_dict()
    restored = LambdaController(policy)
    restored.load_state_dict(state)
    assert all(torch.equal(getattr(restored, k), state[k]) for k in ("value", "l0_ema", "slope"))


def test_warmup_ramps_lambda_and_holds_the_controller_until_it_ends():
    policy = L1Policy("sum", 1e-3, AdaptiveL1(target_l0=10, rate=0.1, update_interval=1, ema=0.0, horizon=0,
                                              warmup_steps=4))
    controller = LambdaController(policy)
    assert [controller.coefficient(s).item() for s in (0, 2, 4, 5)] == pytest.approx([0.0, 0.5e-3, 1e-3, 1e-3])
    controller.update(3, torch.tensor(100.0))
    assert controller.value.item() == pytest.approx(1e-3) and controller.l0_ema.item() == pytest.approx(100.0)
    controller.update(4, torch.tensor(10 * math.e))  # the warm-up is over at step 4: log error 1 → ×e^0.1
    assert controller.value.item() == pytest.approx(1e-3 * math.exp(0.1), rel=1e-6)
    controller.update(5, torch.tensor(10 * math.exp(-3)))  # log error −3 is clipped at −1 → ×e^−0.1
    assert controller.value.item() == pytest.approx(1e-3, rel=1e-6)


# ------------------------------------------------------------------------------------------ model
def test_sae_shape_checks_and_b_pre_methods():
    SparseAutoencoder(1, 1)
    for shape in ((0, 4), (4, 0)):
        with pytest.raises(ValueError, match="must be positive"):
            SparseAutoencoder(*shape)
    with pytest.raises(ValueError, match="zero norm"):
        normalization_scale(torch.zeros(4, 3))
    with pytest.raises(FloatingPointError, match="input scale"):
        normalization_scale(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="unknown b_pre init"):
        initial_b_pre(torch.ones(4, 3), "median")
    # 1-d points 0, 1, 10: the geometric median is the median, 1 (Weiszfeld from the mean 3.67)
    points = torch.tensor([[0.0], [1.0], [10.0]])
    assert initial_b_pre(points, "geometric_median", iterations=200).item() == pytest.approx(1.0, abs=1e-3)
    assert initial_b_pre(points, "mean").item() == pytest.approx(11 / 3)


def test_encode_decode_by_hand():
    sae = hand_sae()
    with torch.no_grad():
        sae.b_enc.copy_(torch.tensor([0.0, -0.5, 0.25]))
    x_hat, z = sae(torch.tensor([[2.0, 1.0]]))
    # x − b_pre = (1, 1); pre = (1, 0.5, 0.25) → z = (1, 0.5, 0.25); x̂ = (2, 0.5 + 0.75) + b_pre
    assert z.tolist() == [[1.0, 0.5, 0.25]]
    assert x_hat.tolist() == [[3.0, 1.25]]


def test_initialize_resets_a_used_encoder_bias():
    sae = SparseAutoencoder(3, 4)
    with torch.no_grad():
        sae.b_enc.fill_(2.0)
    sae.initialize(torch.Generator().manual_seed(0))
    assert torch.equal(sae.b_enc, torch.zeros(4)) and torch.equal(sae.b_pre, torch.zeros(3))


def test_each_step_trains_on_the_next_batch_of_the_mixing_buffer(tmp_path):
    """With lr 0 the weights stay at their initialisation, so each logged MSE identifies its batch: step s
    must have read the s-th batch of the seeded stream (a fresh batch every step, none skipped)."""
    from interplab.sae.buffer import mixed_batches

    cfg = config(batch_size=8, training_tokens=8 * 6, buffer_tokens=64, log_every=1, normalize_tokens=16,
                 b_pre_init_tokens=16, lr=0.0, data_seed=5)
    source = InMemorySource(stream())
    trainer = SAETrainer(cfg, source, tmp_path)
    run = trainer.train()
    c = trainer.input_scale
    expected = []
    for _, x in zip(range(6), mixed_batches(source, 8, 64, seed=5)):
        x_hat, _ = trainer.sae(c * x)
        expected.append(((x_hat - c * x) ** 2).mean().item())
    assert run.log["mse"].tolist() == pytest.approx(expected, rel=1e-5)  # float32 sums in another order
    assert len(set(run.log["mse"].round(6))) == 6


def test_resume_restores_alive_tracking_and_a_fresh_start_clears_stale_snapshots(tmp_path):
    cfg = config(batch_size=8, training_tokens=8 * 25, buffer_tokens=64, log_every=10, snapshot_tokens=(8 * 7,),
                 normalize_tokens=16, b_pre_init_tokens=16, lr=1e-2)
    run = SAETrainer(cfg, InMemorySource(stream()), tmp_path).train()
    assert [s.name for s in run.snapshots] == ["56", "final"], "every snapshot is reported to the caller"
    resumed = SAETrainer(cfg, InMemorySource(stream()), tmp_path).member  # resumes while it is built
    state = resumed.work.load_state(resumed.fingerprint)
    assert resumed.start == 7
    assert torch.equal(resumed.step_fn.last_fired, state["last_fired"]) and (state["last_fired"] > NEVER_FIRED).any()
    assert resumed.input_scale == state["input_scale"] != 1.0
    fresh = SAETrainer(dataclasses.replace(cfg, lr=2e-2), InMemorySource(stream()), tmp_path).member
    assert fresh.start is None, "another config does not resume"
    assert not fresh.work.snapshot_path("56").exists(), "the other config's snapshots are gone"


def test_weights_that_turn_non_finite_at_a_snapshot_step_stop_the_run(tmp_path):
    """The step's statistics are measured before its update, so only the weight check can catch an update
    that breaks the weights on the very step a snapshot is taken (here: an infinite learning rate)."""
    cfg = config(batch_size=8, training_tokens=16, buffer_tokens=64, snapshot_tokens=(8,), normalize_tokens=16,
                 b_pre_init_tokens=16, lr=float("inf"))
    trainer = SAETrainer(cfg, InMemorySource(stream()), tmp_path)
    with pytest.raises(FloatingPointError, match="SAE weight"):
        trainer.train()
    assert not trainer.member.work.snapshot_path("8").exists()
