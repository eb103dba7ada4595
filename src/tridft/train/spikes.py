"""Gradient spikes: a step whose gradient is far above the recent typical norm is clipped.

A fixed ``grad_clip`` (10) does not help when the typical gradient norm is 0.2: an
outlier batch with a norm of 1e10, clipped to 10, is still 50 typical steps in one
direction, and Adam turns a sudden large gradient into a step of about 3 x lr in
every parameter it touches. On QM7b (1000 different molecules) such a step broke the
model every few thousand steps (polarizability loss from 0.005 to 4e8; 500 steps to
recover). Here the clipping threshold follows the gradient: after ``warmup`` steps
(the learning-rate warm-up),
a norm above ``factor`` times the running average of recent (clipped) norms is
clipped to that. The average follows the clipped norms, so a lasting change of the
gradient scale is still followed, at a rate of up to ``factor`` per ~1/(1-decay) steps.
"""

from __future__ import annotations

import math


class SpikeClipping:
    """The clipping threshold of this step, and the running average it comes from.

    The average lives in the training progress (``typical_grad_norm``), so it is
    checkpointed and a resumed run clips exactly as an uninterrupted one.

    >>> clip = SpikeClipping(factor=10.0, warmup=2, decay=0.5)
    >>> typical = 0.0
    >>> for step, norm in enumerate([1.0, 1.0, 1.0, 500.0]):
    ...     limit = clip.limit(step, typical)
    ...     typical = clip.update(typical, step, min(norm, limit))
    >>> limit, typical
    (10.0, 5.5)
    """

    def __init__(self, factor: float | None, warmup: int, decay: float = 0.99):
        self.factor, self.warmup, self.decay = factor, warmup, decay

    def limit(self, step: int, typical: float) -> float:
        """The largest gradient norm allowed at ``step`` (inf while warming up or off)."""
        if self.factor is None or step < self.warmup or typical <= 0.0:
            return math.inf
        return self.factor * typical

    def update(self, typical: float, step: int, applied_norm: float) -> float:
        """The running average after a step whose clipped gradient norm was ``applied_norm``."""
        if not math.isfinite(applied_norm):
            return typical
        if step == 0 or typical <= 0.0:
            return applied_norm
        return self.decay * typical + (1.0 - self.decay) * applied_norm
