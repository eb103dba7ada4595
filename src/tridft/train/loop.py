"""The training loop, written to be read top to bottom.

    result = train(load_config("configs/ethanol.yaml"))
    result.best_model_path   # run_dir/model.pt, for tridft.load_model

``train`` reads the data, splits it (run_dir/split.json), computes the dataset
statistics on the training split only (run_dir/stats.json), builds the model,
the optimizer, the learning-rate schedule, the weight average (EMA), the loss
terms and the loss balancer, and then loops: one global batch per step,
forward, losses, balanced backward, clipping, optimizer step, EMA update; it
logs every term (run_dir/metrics.csv), validates the averaged model every
``validate_every`` steps (run_dir/validation.csv), keeps the best one
(run_dir/model.pt) and writes a checkpoint every ``checkpoint_every`` steps
(run_dir/checkpoint.pt) from which ``train(config, resume=True)`` continues
exactly where the run was.

This module is the loop; what it calls lives beside it: :mod:`.run_data` (reading,
splitting, statistics), :mod:`.run_setup` (resume, the run folder checked, locked and
cleared), :mod:`.limits` (when to stop), :mod:`.progress` (running means, log
columns, the progress bar) and :mod:`.selection` (the validation score, the model
file).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tridft.allocator import keep_freed_memory
from tridft.devices import check_device
from tridft.files import write_json_atomic, write_text_atomic
from tridft.model.persistence import save_model
from tridft.train import checkpoint as ckpt
from tridft.train import distributed
from tridft.train.balancing import build_balancer, gradient_cosines, shared_parameters
from tridft.train.batching import epoch_batches, expected_steps_per_epoch, log_batch_cap
from tridft.train.config import TrainConfig
from tridft.train.denoising import DENOISING, Denoiser
from tridft.train.displaced import DISPLACED_JACOBIAN, displaced_consistency_for
from tridft.train.ema import ExponentialMovingAverage
from tridft.train.evaluate import evaluate
from tridft.train.limits import (MAX_ROLLBACKS, count_total_steps, divergence_error,
                                 non_finite, shared_elapsed, stop_reason)
from tridft.train.losses import build_objective
from tridft.train.metrics_log import CsvLog, TensorBoardLog
from tridft.train.progress import (RunningMeans, metric_columns, progress_bar, short_losses,
                                   short_metrics)
from tridft.train.run_data import RunData, extra_scales, load_data, mean_atoms  # noqa: F401
from tridft.train.run_setup import (check_run_dir_and_data, clear_run_dir, lock_run_dir,
                                    on_rank_zero, should_resume, warn_about_changes)
from tridft.train.rundir import RunDirLock
from tridft.train.schedule import LearningRateSchedule
from tridft.train.selection import (MODEL_NAME, finish_model_file, model_metadata,
                                    run_summary, validation_score)
from tridft.train.spikes import SpikeClipping

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run produced.

    run_dir:          everything the run wrote
    best_model_path:  run_dir/model.pt, the best validated (averaged) model
    metrics:          validation metrics of that model (units: evaluate.METRIC_UNITS)
    test_metrics:     its metrics on the test split (empty without one)
    steps, epochs:    optimizer steps taken, epochs started
    elapsed_s:        training wall time, all sessions of a resumed run together
    stopped_because:  "max_steps", "max_epochs", "time_limit" or "early_stopping"
    tasks:            the tasks trained and their weights (tridft.train.tasks)
    """

    run_dir: Path
    best_model_path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    epochs: int = 0
    elapsed_s: float = 0.0
    stopped_because: str = ""
    tasks: dict[str, float] = field(default_factory=dict)


def train(config: TrainConfig, resume: bool = False, progress: bool = True,
          overwrite: bool = False) -> TrainResult:
    """Train a model as ``config`` says; with ``resume``, continue from run_dir/checkpoint.pt.

    A fresh run refuses a run_dir that holds run files (model.pt, checkpoint.pt, ...)
    unless ``overwrite``; the run_dir is locked while the run writes (see train/rundir.py).
    Under ``torchrun`` every process calls this; they share the work of each batch.
    """
    check_device(config.training.device, "training.device")
    context = distributed.setup(config.training.device)
    lock = RunDirLock(config.run_dir)
    try:
        return _train(config, resume, progress, context, overwrite, lock)
    finally:
        lock.release()
        distributed.teardown(context)


def _train(config: TrainConfig, resume: bool, progress: bool, context: distributed.Context,
           overwrite: bool, lock: RunDirLock) -> TrainResult:
    training = config.training
    run_dir = Path(config.run_dir)
    checkpoint_path = run_dir / ckpt.CHECKPOINT_NAME
    resume = should_resume(run_dir, checkpoint_path, resume)
    # Before reading data:
    on_rank_zero(context, check_run_dir_and_data, config, resume, overwrite)
    if training.num_threads:
        torch.set_num_threads(training.num_threads)
    keep_freed_memory()  # every step reallocates the same tensors: reuse, don't page-fault
    torch.manual_seed(training.seed)  # the model's initial weights
    np.random.seed(training.seed)
    dtype = torch.float64 if config.model.dtype == "float64" else torch.float32
    device = context.device

    # ---- data: read, split, statistics of the training split -----------------------------
    data = load_data(config, run_dir, resume)

    # ---- model, losses, balancing, optimizer, schedule, weight average ------------------------
    model = data.plan.build_model(config.model, data.stats, data.train.records)
    if model.repulsion is not None and data.domain is not None:  # the prior starts where data ends
        model.repulsion.set_onsets(torch.from_numpy(data.domain.shortest_table()))
    model = model.to(device)
    loss_config = data.plan.loss_config(config.loss)  # every label the data carries
    tasks = loss_config.tasks()
    # Nothing is written before the data and the tasks are known to be usable.
    on_rank_zero(context, lock_run_dir, lock, run_dir, resume, overwrite)
    if not resume:
        clear_run_dir(run_dir, context)
    if context.is_main:
        write_text_atomic(run_dir / "config.yaml", config.to_yaml())
        data.splits.save(run_dir / "split.json")
        write_json_atomic(run_dir / "stats.json", data.stats.to_dict())
    context.broadcast_parameters(model)
    objective = build_objective(loss_config, data.stats, training.force_source,
                                extra_scales=extra_scales(tasks, data.train.records),
                                count_average=context.average)  # shared loss denominators
    trains_minus_dE_dR = objective.needs_conservative_forces
    balancer = build_balancer(loss_config, tasks, model, average=context.average,
                              seed=training.seed).to(device)
    ema = ExponentialMovingAverage(model, training.ema_decay) if training.ema_decay > 0 else None
    # After the average's copy of the model: the copy must not catch latents for it.
    denoiser = Denoiser(model, training.position_noise).to(device=device, dtype=dtype) \
        if training.position_noise > 0 else None
    if denoiser is not None:
        context.broadcast_parameters(denoiser)
    displaced_consistency = displaced_consistency_for(
        training.consistency_noise, loss_config.jacobian_weight, float(data.stats.forces_rms),
        trains_minus_dE_dR)
    # The model's and the denoising readout's weights: optimised, clipped together.
    clipped = list(model.parameters()) + (list(denoiser.parameters()) if denoiser else [])
    optimizer = torch.optim.AdamW(
        [{"params": clipped, "weight_decay": training.weight_decay},
         {"params": balancer.optimizer_parameters(), "weight_decay": 0.0}],
        lr=training.lr, fused=device.type in ("cpu", "cuda"))  # fused: ~6x faster on CPU
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    train_atoms = [len(record.numbers) for record in data.train.records]
    steps_per_epoch = expected_steps_per_epoch(train_atoms, training.batch_size,
                                               training.batch_atoms, context.world_size)
    log_batch_cap(train_atoms, training, steps_per_epoch)
    schedule = LearningRateSchedule(training, count_total_steps(training, steps_per_epoch))
    spikes = SpikeClipping(training.grad_spike_factor, warmup=training.warmup_steps)
    shuffle = torch.Generator().manual_seed(training.seed)
    # Different latent-sampling noise on every process (the same as one process on rank 0).
    torch.manual_seed(training.seed + 1 + context.rank)

    state = ckpt.TrainingProgress()
    if resume:
        payload = ckpt.load_checkpoint(checkpoint_path)
        warn_about_changes(payload, config)
        state = ckpt.restore(payload, model=model, optimizer=optimizer, schedule=schedule,
                             ema=ema, balancer=balancer, denoiser=denoiser)
        ckpt.restore_rng(payload["rng"], shuffle, context.rank)
        logger.info("resumed %s at step %d (epoch %d)", run_dir, state.step, state.epoch)

    # ---- logbooks (rank 0 only) ------------------------------------------------------------
    metrics_log = CsvLog(run_dir / "metrics.csv")
    validation_log = CsvLog(run_dir / "validation.csv")
    tensorboard = TensorBoardLog(run_dir / "tensorboard") if context.is_main else None
    if resume and context.is_main:
        metrics_log.truncate_after(state.step)
        validation_log.truncate_after(state.step)
    window = RunningMeans()
    cosines: dict[str, float] = {}
    bar = progress_bar(progress and context.is_main, state.step, schedule.total_steps)

    def evaluation_model():
        return ema.model if ema is not None else model

    session_start = time.monotonic()
    elapsed_before = state.elapsed_s
    last_checkpoint = state.step if resume else None  # step of the last checkpoint written

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - session_start

    def save_best(metrics: dict) -> None:
        state.elapsed_s = elapsed()
        summary = run_summary(state, metrics, config, stopped_because="")
        save_model(evaluation_model(), run_dir / MODEL_NAME,
                   metadata=model_metadata(data, config, summary))

    def validate() -> None:
        """Evaluate the averaged model, keep it if best, update plateau and early stopping."""
        score = math.nan
        if context.is_main:
            metrics = evaluate(evaluation_model(), data.validation, forces=training.force_source)
            score = validation_score(metrics, data.stats, loss_config.weights,
                                     extra_scales(tasks, data.train.records),
                                     mean_atoms=mean_atoms(data.validation))
            validation_log.write({"step": state.step, "epoch": state.epoch, "score": score,
                                  **metrics})
            tensorboard.write(metrics, state.step, prefix="validation/")
            if score < state.best_score:
                state.best_metrics = {k: float(v) for k, v in metrics.items()}
                save_best(metrics)
            logger.info("step %d: validation %s", state.step, short_metrics(metrics))
            bar.set_postfix_str("val " + short_metrics(metrics), refresh=False)
        score = context.broadcast_float(score)  # every process takes the same decisions
        if score < state.best_score:
            state.best_score, state.best_step = score, state.step
            state.validations_without_improvement = 0
        else:
            state.validations_without_improvement += 1
        schedule.on_validation(score)
        state.last_validated_step = state.step

    def save_checkpoint() -> None:
        nonlocal last_checkpoint
        state.elapsed_s = elapsed()
        rng = ckpt.capture_rng(shuffle, context.gather_rng_states())  # collective
        if context.is_main:
            ckpt.save_checkpoint(checkpoint_path, model=model, optimizer=optimizer,
                                 schedule=schedule, ema=ema, balancer=balancer, progress=state,
                                 rng=rng, metadata=model_metadata(data, config, {}),
                                 denoiser=denoiser)
        last_checkpoint = state.step

    def roll_back(problem: str) -> None:
        """A non-finite loss or gradient: back to the last checkpoint with half the learning
        rate (at most MAX_ROLLBACKS times; then, or without a checkpoint, stop)."""
        nonlocal state, batches, window
        if last_checkpoint is None or state.rollbacks >= MAX_ROLLBACKS:
            raise divergence_error(state.step, problem, last_checkpoint, checkpoint_path,
                                   state.rollbacks)
        failed_step, rollbacks, lr_scale = state.step, state.rollbacks + 1, state.lr_scale / 2
        payload = ckpt.load_checkpoint(checkpoint_path)
        state = ckpt.restore(payload, model=model, optimizer=optimizer, schedule=schedule,
                             ema=ema, balancer=balancer, denoiser=denoiser)
        ckpt.restore_rng(payload["rng"], shuffle, context.rank)
        state.rollbacks, state.lr_scale = rollbacks, lr_scale
        if context.is_main:
            metrics_log.truncate_after(state.step)
            validation_log.truncate_after(state.step)
        batches, window = [], RunningMeans()
        logger.warning("step %d: non-finite training loss (%s); back to the checkpoint of "
                       "step %d with the learning rate x %g", failed_step, problem, state.step,
                       lr_scale)

    # ---- the loop: one global batch per step ---------------------------------------------------
    stopped_because = stop_reason(state, training, steps_per_epoch, elapsed(), context)
    batches: list[list[int]] = []  # the global batches of this epoch
    while not stopped_because:
        if not state.epoch_order:  # a new epoch: a new order of the training structures
            state.epoch_order = torch.randperm(len(data.train), generator=shuffle).tolist()
            batches = []
        if not batches:  # also after resuming: the order determines the batches
            batches = epoch_batches(state.epoch_order, train_atoms, training.batch_size,
                                    training.batch_atoms, context.world_size)
        global_batch = batches[state.batch_in_epoch]
        batch = data.train.collate(context.shard(global_batch), dtype=dtype).to(device)

        if not model.training:  # after a validation; train() walks every module (~1 ms)
            model.train()
        # -dE/dR (a double backward) only on every k-th step when conservative_every = k.
        conservative = trains_minus_dE_dR \
            and state.step % loss_config.conservative_every == 0
        outputs = model(batch, forces="both" if conservative else "direct")
        losses = objective(outputs, batch, state.step, conservative=conservative)
        if denoiser is not None:  # a second pass: the latent of a displaced copy
            denoiser.add_loss(losses, model, batch, loss_config.denoising_weight)
        if displaced_consistency is not None and conservative:
            # A third pass: the Jacobian term on a displaced copy (between the structures).
            displaced_consistency.add_loss(losses, model, batch)
        problem = non_finite(losses.as_floats(), context)
        if problem:
            roll_back(problem)
            continue
        if training.gradient_cosine_every and state.step % training.gradient_cosine_every == 0 \
                and len(losses.present_tasks()) > 1:
            cosines = gradient_cosines(losses.present_tasks(), shared_parameters(model),
                                       average=context.average)

        optimizer.zero_grad(set_to_none=True)
        total = balancer.backward(losses, state.step)
        context.average_gradients(trained)
        spike_limit = spikes.limit(state.step, state.typical_grad_norm)
        limit = min(training.grad_clip or math.inf, spike_limit)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(clipped, limit))
        problem = non_finite({"gradient norm": grad_norm}, context)
        if problem:
            roll_back(problem)
            continue
        state.typical_grad_norm = spikes.update(state.typical_grad_norm, state.step,
                                                min(grad_norm, limit))
        lr = schedule.lr(state.step, shared_elapsed(elapsed(), training, context)) \
            * state.lr_scale
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        if ema is not None:
            ema.update(model)

        state.step += 1
        state.batch_in_epoch += 1
        if state.batch_in_epoch == len(batches):
            state.epoch, state.batch_in_epoch, state.epoch_order = state.epoch + 1, 0, []
        window.add({"loss_total": float(total), **losses.as_floats(), "grad_norm": grad_norm,
                    "spikes_clipped": float(grad_norm > spike_limit)})
        bar.update(1)

        if state.step % training.log_every == 0 and context.is_main:
            row = {"step": state.step, "epoch": state.epoch, "time_s": round(elapsed(), 2),
                   "lr": lr, **window.means(),
                   **{f"weight_{task}": w for task, w in balancer.weights().items()},
                   **{f"cos_{pair}": value for pair, value in cosines.items()}}
            if metrics_log.columns is None:
                metrics_log.columns = metric_columns(
                    tasks, objective, balancer, ([DENOISING] if denoiser is not None else [])
                    + ([DISPLACED_JACOBIAN] if displaced_consistency else []))
            metrics_log.write(row)
            tensorboard.write(row, state.step, prefix="train/")
            bar.set_description(short_losses(row), refresh=False)
            window, cosines = RunningMeans(), {}
        if data.validation and state.step % training.validate_every == 0:
            validate()
        if state.step % training.checkpoint_every == 0:
            save_checkpoint()
        stopped_because = stop_reason(state, training, steps_per_epoch, elapsed(), context)

    # ---- the end: last validation and checkpoint, the best model on the test split ---------------
    bar.close()
    if data.validation and state.last_validated_step != state.step:
        validate()
    if last_checkpoint != state.step:
        save_checkpoint()
    state.elapsed_s = elapsed()
    best_path = run_dir / MODEL_NAME
    result = TrainResult(run_dir=run_dir, best_model_path=best_path, steps=state.step,
                         epochs=state.epoch + (state.batch_in_epoch > 0),
                         elapsed_s=elapsed(), stopped_because=stopped_because,
                         metrics=dict(state.best_metrics), tasks=dict(loss_config.weights))
    if context.is_main:
        if not data.validation or not best_path.is_file():
            save_best({})  # nothing to choose by: the final model is the model
        finish_model_file(best_path, data, config, state, stopped_because)
        if data.test:
            from tridft.model.persistence import load_model
            result.test_metrics = evaluate(load_model(best_path).to(device), data.test,
                                           forces=training.force_source)
            write_json_atomic(run_dir / "test_metrics.json", result.test_metrics)
        tensorboard.close()
    logger.info("training stopped (%s) after %d steps, %.0f s", stopped_because, state.step,
                result.elapsed_s)
    return result
