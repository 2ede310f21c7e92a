"""Optimizers and lr schedules: hand-computed updates, torch as an optional oracle, resuming."""
import math

import numpy as np
import pytest

import minidense as md
from minidense import optim
from minidense.optim import lr_scheduler


def make_param(values, device="cpu", dtype=md.float64):
    return md.tensor(np.array(values), dtype=dtype, device=device, requires_grad=True)


def set_grad(param, values):
    param.grad = md.tensor(np.array(values), dtype=param.dtype, device=param.device)


# -- SGD --------------------------------------------------------------------------------------
def test_sgd_plain_step(device):
    p = make_param([1.0, -2.0], device)
    opt = optim.SGD([p], lr=0.5)
    set_grad(p, [0.2, 0.4])
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.9, -2.2])


def test_sgd_nesterov_weight_decay_three_steps_by_hand(device):
    """f(p) = 0.5 * a * p**2 per coordinate; three steps written out with the closed-form rule."""
    a = np.array([1.0, 3.0])
    lr, mu, wd = 0.1, 0.9, 0.01
    p = make_param([1.0, -2.0], device)
    opt = optim.SGD([p], lr=lr, momentum=mu, nesterov=True, weight_decay=wd)

    expected, buf = np.array([1.0, -2.0]), None
    for _ in range(3):
        loss = (md.tensor(a, dtype=md.float64, device=device) * p * p).sum() * 0.5
        opt.zero_grad()
        loss.backward()
        opt.step()
        g = a * expected + wd * expected
        buf = g.copy() if buf is None else mu * buf + g
        expected = expected - lr * (g + mu * buf)
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12)

    # The same three steps, fully expanded for the first coordinate (a=1, p0=1):
    # step 1: g = (1 + 0.01) * p0, buf = g,        p1 = p0 - 0.1 * (g + 0.9 * buf)
    b1 = 1.01
    p1 = 1 - 0.1 * (1.01 + 0.9 * b1)
    # step 2: g = 1.01 * p1,         buf = 0.9 * buf + g
    b2 = 0.9 * b1 + 1.01 * p1
    p2 = p1 - 0.1 * (1.01 * p1 + 0.9 * b2)
    # step 3
    b3 = 0.9 * b2 + 1.01 * p2
    p3 = p2 - 0.1 * (1.01 * p2 + 0.9 * b3)
    assert p.numpy()[0] == pytest.approx(p3, rel=1e-12)


def test_sgd_momentum_with_dampening():
    p = make_param([0.0])
    opt = optim.SGD([p], lr=1.0, momentum=0.5, dampening=0.5)
    for _ in range(2):
        set_grad(p, [1.0])
        opt.step()
    # step 1: buf = 1 (no dampening on the first step), p = -1
    # step 2: buf = 0.5 * 1 + 0.5 * 1 = 1, p = -2
    np.testing.assert_allclose(p.numpy(), [-2.0])
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], [1.0])


def test_sgd_rejects_bad_nesterov_and_values():
    p = make_param([1.0])
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)


def test_params_without_grad_are_skipped_and_groups_have_own_options():
    a, b, c = make_param([1.0]), make_param([1.0]), make_param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.5
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    np.testing.assert_allclose([a.item(), b.item(), c.item()], [0.9, 0.5, 1.0])
    assert c not in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_same_parameter_in_two_groups_is_an_error():
    a = make_param([1.0])
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)


# -- Adam / AdamW -----------------------------------------------------------------------------
def adam_by_hand(p, grads, lr, b1, b2, eps, wd, decoupled):
    m = v = 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("cls, decoupled", [(optim.Adam, False), (optim.AdamW, True)])
def test_adam_and_adamw_against_hand_computation(cls, decoupled, device):
    grads = [0.5, -0.25, 1.0]
    p = make_param([2.0], device)
    opt = cls([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for g in grads:
        set_grad(p, [g])
        opt.step()
    expected = adam_by_hand(2.0, grads, 0.1, 0.9, 0.99, 1e-8, 0.1, decoupled)
    assert p.numpy()[0] == pytest.approx(expected, rel=1e-12)
    assert opt.state[p]["step"] == 3


def test_adam_first_step_moves_by_lr():
    """After bias correction the first Adam step is lr * sign(grad) (up to eps)."""
    p = make_param([1.0, 1.0])
    opt = optim.Adam([p], lr=0.01)
    set_grad(p, [3.0, -1e-3])
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.99, 1.01], rtol=1e-6)


def test_adamw_default_weight_decay():
    assert optim.AdamW([make_param([1.0])]).defaults["weight_decay"] == 1e-2
    assert optim.Adam([make_param([1.0])]).defaults["weight_decay"] == 0


# -- torch as an oracle -----------------------------------------------------------------------
TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.9), weight_decay=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, options", TORCH_CASES)
def test_matches_torch_optim(name, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]

    ours = make_param(start)
    theirs = torch.tensor(start, requires_grad=True)
    our_opt = getattr(optim, name)([ours], **options)
    their_opt = getattr(torch.optim, name)([theirs], **options)
    for g in grads:
        set_grad(ours, g)
        theirs.grad = torch.tensor(g)
        our_opt.step()
        their_opt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


# -- state_dict round trip --------------------------------------------------------------------
@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
    lambda ps: optim.Adam(ps, lr=0.01),
])
def test_optimizer_and_scheduler_resume_identically(make_opt, tmp_path):
    rng = np.random.default_rng(3)
    grads = [[rng.standard_normal(2), rng.standard_normal(3)] for _ in range(6)]

    def build():
        params = [make_param([1.0, 2.0], dtype=md.float32), make_param([0.5, -1.0, 3.0],
                                                                       dtype=md.float32)]
        opt = make_opt(params)
        return params, opt, lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)

    def run(params, opt, sched, steps):
        for step_grads in steps:
            for p, g in zip(params, step_grads):
                set_grad(p, g)
            opt.step()
            sched.step()

    params, opt, sched = build()
    run(params, opt, sched, grads)                       # uninterrupted reference

    params2, opt2, sched2 = build()
    run(params2, opt2, sched2, grads[:3])
    md.save({"optimizer": opt2.state_dict(), "scheduler": sched2.state_dict(),
             "params": [p.data for p in params2]}, tmp_path / "ckpt.npz")

    checkpoint = md.load(tmp_path / "ckpt.npz")
    params3, opt3, sched3 = build()
    for p, saved in zip(params3, checkpoint["params"]):
        p.data[...] = saved
    opt3.load_state_dict(checkpoint["optimizer"])
    sched3.load_state_dict(checkpoint["scheduler"])
    run(params3, opt3, sched3, grads[3:])

    for ref, resumed in zip(params, params3):
        np.testing.assert_array_equal(ref.numpy(), resumed.numpy())
    assert sched3.get_last_lr() == sched.get_last_lr()
    assert sched3.last_epoch == 6
    assert opt3.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_optimizer_state_dict_is_numpy_and_plain_values():
    p = make_param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    set_grad(p, [1.0])
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0]
    buf = sd["state"][0]["momentum_buffer"]
    assert isinstance(buf, np.ndarray) and buf is not opt.state[p]["momentum_buffer"]


def test_optimizer_load_state_dict_checks_group_sizes():
    opt = optim.SGD([make_param([1.0]), make_param([1.0])], lr=0.1)
    other = optim.SGD([make_param([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        opt.load_state_dict(other.state_dict())


# -- schedulers -------------------------------------------------------------------------------
def lr_sequence(make_scheduler, epochs, lr=0.1):
    opt = optim.SGD([make_param([1.0])], lr=lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])     # the lr used for this epoch's training
        scheduler.step()
    return lrs, scheduler


def test_multistep_lr_densenet_schedule():
    lrs, sched = lr_sequence(lambda o: lr_scheduler.MultiStepLR(o, milestones=[4, 6]), 8)
    np.testing.assert_allclose(lrs, [0.1] * 4 + [0.01] * 2 + [0.001] * 2, rtol=1e-12)
    assert sched.last_epoch == 8
    assert sched.get_last_lr() == pytest.approx([1e-3])   # no third milestone


def test_step_lr():
    lrs, _ = lr_sequence(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 7, lr=1.0)
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_cosine_annealing_lr():
    lrs, _ = lr_sequence(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=0.01), 5,
                         lr=1.0)
    expected = [0.01 + 0.99 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert lrs[0] == 1.0 and lrs[4] == pytest.approx(0.01)


def test_scheduler_construction_keeps_initial_lr():
    opt = optim.SGD([make_param([1.0])], lr=0.3)
    sched = lr_scheduler.StepLR(opt, step_size=1)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.3]
    assert opt.param_groups[0]["initial_lr"] == 0.3


@pytest.mark.parametrize("name, options", [
    ("StepLR", dict(step_size=2, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[1, 3])),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.001)),
])
def test_schedulers_match_torch(name, options):
    torch = pytest.importorskip("torch")
    ours, _ = lr_sequence(lambda o: getattr(lr_scheduler, name)(o, **options), 6)
    their_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    their_scheduler = getattr(torch.optim.lr_scheduler, name)(their_opt, **options)
    theirs = []
    for _ in range(6):
        theirs.append(their_opt.param_groups[0]["lr"])
        their_opt.step()
        their_scheduler.step()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_zero_grad_can_fill_with_zeros_across_groups():
    a, b = make_param([1.0, 2.0]), make_param([3.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    set_grad(a, [4.0, 5.0])
    set_grad(b, [6.0])
    kept = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is kept
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0])
