"""Loss balancing strategies, PCGrad and the gradient-cosine measurement, on small problems
whose gradients are known."""

from __future__ import annotations

import math

import pytest
import torch

from tridft.train.balancing import (Fixed, GradNorm, UncertaintyWeighting, flat_gradient,
                                    gradient_cosines, project_conflicting)
from tridft.train.losses import Losses


class TwoTasks:
    """A shared linear layer W and one head per task; task a's loss is ``scale`` times task
    b's. With ``identical_heads`` the tasks are otherwise the same, so a's gradient on W is
    exactly ``scale`` times b's."""

    def __init__(self, scale: float = 1.0, seed: int = 0, identical_heads: bool = False):
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.shared = torch.nn.Linear(4, 4)
        self.heads = {task: torch.nn.Linear(4, 1) for task in ("a", "b")}
        if identical_heads:
            self.heads["b"].load_state_dict(self.heads["a"].state_dict())
        self.x = torch.randn(16, 4, generator=generator)
        self.y = torch.randn(16, 1, generator=generator)
        self.scale = scale

    def losses(self) -> dict[str, torch.Tensor]:
        hidden = torch.tanh(self.shared(self.x))
        return {"a": self.scale * ((self.heads["a"](hidden) - self.y) ** 2).mean(),
                "b": ((self.heads["b"](hidden) - self.y) ** 2).mean()}

    def shared_params(self) -> list[torch.nn.Parameter]:
        return list(self.shared.parameters())


def as_losses(task_losses: dict[str, torch.Tensor], present=None) -> Losses:
    present = present or {task: True for task in task_losses}
    return Losses(tasks=task_losses, present=present)


def test_fixed_weights_give_the_weighted_sum_of_gradients():
    problem = TwoTasks()
    balancer = Fixed({"a": 2.0, "b": 0.5}, problem.shared_params())
    losses = problem.losses()
    expected = (2.0 * flat_gradient(losses["a"], problem.shared_params())
                + 0.5 * flat_gradient(losses["b"], problem.shared_params()))
    total = balancer.backward(as_losses(losses))
    assert float(total) == pytest.approx(float((2.0 * losses["a"] + 0.5 * losses["b"]).detach()))
    gradient = torch.cat([p.grad.reshape(-1) for p in problem.shared_params()])
    assert torch.allclose(gradient, expected)
    assert balancer.weights() == {"a": 2.0, "b": 0.5}


def test_uncertainty_log_variances_move_towards_log_of_each_loss():
    # With the losses held fixed, exp(-s) L + s is smallest at s = log L.
    balancer = UncertaintyWeighting(["big", "small"], shared_params=[])
    optimizer = torch.optim.Adam(balancer.optimizer_parameters(), lr=0.05)
    anchor = torch.ones((), requires_grad=True)
    for _ in range(400):
        optimizer.zero_grad()
        balancer.backward(as_losses({"big": 4.0 * anchor, "small": 0.25 * anchor}))
        optimizer.step()
    log_variances = balancer.log_variances.detach()
    assert float(log_variances[0]) == pytest.approx(math.log(4.0), abs=0.05)
    assert float(log_variances[1]) == pytest.approx(math.log(0.25), abs=0.05)
    weights = balancer.weights()
    assert weights["big"] == pytest.approx(0.25, rel=0.06)  # exp(-s) = 1 / L


def test_uncertainty_skips_tasks_without_labels_in_the_batch():
    balancer = UncertaintyWeighting(["a", "b"], shared_params=[])
    anchor = torch.ones((), requires_grad=True)
    balancer.backward(as_losses({"a": 2.0 * anchor, "b": 0.0 * anchor},
                                present={"a": True, "b": False}))
    gradient = balancer.log_variances.grad
    assert float(gradient[0]) == pytest.approx(1.0 - 2.0)  # d/ds (exp(-s) L + s) at s = 0
    assert float(gradient[1]) == 0.0  # an absent task must not drift


def gradient_norm_ratio(problem: TwoTasks, balancer: GradNorm) -> float:
    """||grad_W w_a L_a|| / ||grad_W w_b L_b|| on the shared layer."""
    losses = problem.losses()
    weights = balancer.weights()
    norms = {task: weights[task] * flat_gradient(loss, problem.shared_params()).norm()
             for task, loss in losses.items()}
    return float(norms["a"] / norms["b"])


def test_gradnorm_equalises_gradient_norms_and_keeps_weights_summing_to_task_count():
    problem = TwoTasks(scale=20.0, identical_heads=True)
    balancer = GradNorm({"a": 1.0, "b": 1.0}, problem.shared_params(),
                        last_shared_params=problem.shared_params(), alpha=1.5, lr=0.05)
    ratios = [gradient_norm_ratio(problem, balancer)]
    for _ in range(60):  # the model is not updated: training rates stay equal
        balancer.backward(as_losses(problem.losses()))
        ratios.append(gradient_norm_ratio(problem, balancer))
        assert sum(balancer.weights().values()) == pytest.approx(2.0)
    assert ratios[0] == pytest.approx(20.0, rel=1e-6)
    assert abs(math.log(ratios[-1])) < 0.2 * abs(math.log(ratios[0]))
    assert balancer.weights()["a"] < balancer.weights()["b"]


def test_gradnorm_gives_more_weight_to_the_task_that_trains_slower():
    problem = TwoTasks(scale=1.0, identical_heads=True)
    balancer = GradNorm({"a": 1.0, "b": 1.0}, problem.shared_params(),
                        last_shared_params=problem.shared_params(), alpha=1.5, lr=0.05)
    balancer.backward(as_losses(problem.losses()))  # records L(0) with equal gradient norms
    weights_after_first = balancer.weights()
    # Now task b has "trained" to a tenth of its initial loss while a has not moved: a is
    # behind, its target gradient norm rises, and its weight must grow.
    for _ in range(20):
        losses = problem.losses()
        losses["b"] = 0.1 * losses["b"]
        balancer.backward(as_losses(losses))
    assert balancer.weights()["a"] > weights_after_first["a"]
    assert balancer.weights()["a"] > balancer.weights()["b"]


def test_pcgrad_removes_the_conflicting_component():
    g1, g2 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([-1.0, 2.0, 0.0])
    assert torch.dot(g1, g2) < 0
    p1, p2 = project_conflicting([g1, g2])
    # Each projected gradient no longer opposes the other task's gradient ...
    assert float(torch.dot(p1, g2)) == pytest.approx(0.0, abs=1e-7)
    assert float(torch.dot(p2, g1)) == pytest.approx(0.0, abs=1e-7)
    # ... and only the conflicting component was removed.
    assert torch.allclose(p1, g1 - torch.dot(g1, g2) / torch.dot(g2, g2) * g2)
    aligned = torch.tensor([1.0, 1.0, 0.0])
    assert torch.equal(project_conflicting([g1, aligned])[0], g1)  # no conflict: unchanged


def test_pcgrad_backward_sets_the_sum_of_projected_gradients_on_shared_parameters():
    problem = TwoTasks(seed=3)
    shared = problem.shared_params()
    losses = problem.losses()
    losses["b"] = -losses["b"]  # make the tasks conflict on the shared layer
    g_a, g_b = flat_gradient(losses["a"], shared), flat_gradient(losses["b"], shared)
    assert torch.dot(g_a, g_b) < 0
    Fixed({"a": 1.0, "b": 1.0}, shared, pcgrad=True).backward(as_losses(losses))
    gradient = torch.cat([p.grad.reshape(-1) for p in shared])
    expected = sum(project_conflicting([g_a, g_b]))
    assert torch.allclose(gradient, expected, atol=1e-6)
    assert float(torch.dot(gradient, g_a + g_b)) != pytest.approx(
        float(torch.dot(g_a + g_b, g_a + g_b)))  # really not the plain sum
    # Heads are not shared: each keeps its own task's gradient.
    head_gradient = problem.heads["a"].weight.grad
    losses = problem.losses()
    (expected_head,) = torch.autograd.grad(losses["a"], problem.heads["a"].weight)
    assert torch.allclose(head_gradient, expected_head, atol=1e-6)


def test_gradient_cosine_of_identical_tasks_is_one_and_of_opposite_tasks_minus_one():
    problem = TwoTasks()
    loss = problem.losses()["a"]
    cosines = gradient_cosines({"a": loss, "same": 3.0 * loss, "opposite": -loss},
                               problem.shared_params())
    assert cosines["a|same"] == pytest.approx(1.0, abs=1e-6)
    assert cosines["a|opposite"] == pytest.approx(-1.0, abs=1e-6)
    assert cosines["same|opposite"] == pytest.approx(-1.0, abs=1e-6)
    independent = gradient_cosines(problem.losses(), problem.shared_params())
    assert -1.0 < independent["a|b"] < 1.0
