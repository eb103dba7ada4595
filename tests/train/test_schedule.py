"""The learning-rate schedule: warm-up, cosine by steps or by the clock, plateau."""

from __future__ import annotations

import pytest

from tridft.train.config import TrainingConfig
from tridft.train.schedule import LearningRateSchedule


def test_warmup_then_cosine_down_to_the_floor():
    training = TrainingConfig(lr=1e-3, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    schedule = LearningRateSchedule(training, total_steps=110)
    assert schedule.lr(0) == pytest.approx(1e-4)  # first step of the warm-up
    assert schedule.lr(9) == pytest.approx(1e-3)
    assert schedule.lr(10) == pytest.approx(1e-3)  # the cosine starts at the peak
    assert schedule.lr(60) == pytest.approx(0.55e-3)  # half-way: the mean of peak and floor
    assert schedule.lr(110) == pytest.approx(1e-4)
    rates = [schedule.lr(step) for step in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_cosine_follows_the_clock_when_the_time_limit_comes_first():
    training = TrainingConfig(lr=1e-3, warmup_steps=0, max_steps=10_000, min_lr_ratio=0.0,
                              time_limit_minutes=1.0)
    schedule = LearningRateSchedule(training, total_steps=10_000)
    assert schedule.lr(100, elapsed_s=30.0) == pytest.approx(0.5e-3)  # half the time gone
    assert schedule.lr(100, elapsed_s=60.0) == pytest.approx(0.0, abs=1e-12)


def test_plateau_lowers_the_rate_after_patience_validations_without_improvement():
    training = TrainingConfig(lr=1e-3, warmup_steps=0, scheduler="plateau", plateau_patience=2,
                              plateau_factor=0.5, min_lr_ratio=0.2)
    schedule = LearningRateSchedule(training, total_steps=None)
    for score in (1.0, 0.9, 0.95, 0.91):  # two validations without improvement
        schedule.on_validation(score)
    assert schedule.lr(5) == pytest.approx(0.5e-3)
    for score in (0.95, 0.95, 0.95, 0.95, 0.95, 0.95):
        schedule.on_validation(score)
    assert schedule.lr(5) == pytest.approx(0.2e-3)  # never below lr * min_lr_ratio
    restored = LearningRateSchedule(training, total_steps=None)
    restored.load_state_dict(schedule.state_dict())
    assert restored.lr(5) == schedule.lr(5)
