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
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tridft.data.dataset import GraphDataset
from tridft.data.domain import Domain
from tridft.data.io import bundled_dataset_path, read_structures
from tridft.data.options import keys_from_mapping, units_from_mapping
from tridft.data.record import Record
from tridft.data.references import without_unsupported_energies
from tridft.data.splits import Splits, make_splits
from tridft.data.stats import DatasetStats
from tridft.errors import CheckpointError, ConfigError, InputError, TriDFTError
from tridft.devices import check_device
from tridft.files import write_json_atomic, write_text_atomic
from tridft.model.persistence import save_model
from tridft.outputs import check_not_inside
from tridft.train import checkpoint as ckpt
from tridft.train import distributed
from tridft.train.balancing import build_balancer, gradient_cosines, shared_parameters
from tridft.train.config import TrainConfig
from tridft.train.ema import ExponentialMovingAverage
from tridft.train.evaluate import evaluate
from tridft.train.losses import TASK_SCALES, build_objective
from tridft.train.metrics_log import CsvLog, TensorBoardLog
from tridft.train.rundir import RUN_FILES, RunDirLock, check_run_dir
from tridft.train.schedule import LearningRateSchedule
from tridft.train.tasks import TaskPlan, plan_tasks

logger = logging.getLogger(__name__)

MODEL_NAME = "model.pt"
INTERNAL_UNITS = {"energy": "eV", "length": "Angstrom", "forces": "eV/Angstrom",
                  "polarizability": "Angstrom^3", "dipole": "e*Angstrom"}


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


@dataclass
class RunData:
    """The structures of a run, split, with the statistics of the training part."""

    train: GraphDataset
    validation: list[Record]
    test: list[Record]
    splits: Splits
    stats: DatasetStats
    sources: dict[str, str | None]
    domain: Domain | None = None  # what the training structures look like (data/domain.py)
    plan: TaskPlan | None = None  # the tasks and heads of the run (train/tasks.py)


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
    resume = _should_resume(run_dir, checkpoint_path, resume)
    _on_rank_zero(context, _check_run_dir, config, resume, overwrite)  # before reading data
    if training.num_threads:
        torch.set_num_threads(training.num_threads)
    torch.manual_seed(training.seed)  # the model's initial weights
    np.random.seed(training.seed)
    dtype = torch.float64 if config.model.dtype == "float64" else torch.float32
    device = context.device

    # ---- data: read, split, statistics of the training split -----------------------------
    data = load_data(config, run_dir, resume)

    # ---- model, losses, balancing, optimizer, schedule, weight average ------------------------
    model = data.plan.build_model(config.model, data.stats, data.train.records).to(device)
    loss_config = data.plan.loss_config(config.loss)  # every label the data carries
    tasks = loss_config.tasks()
    # Nothing is written before the data and the tasks are known to be usable.
    _on_rank_zero(context, _lock_run_dir, lock, run_dir, resume, overwrite)
    if not resume:
        _clear_run_dir(run_dir, context)
    if context.is_main:
        write_text_atomic(run_dir / "config.yaml", config.to_yaml())
        data.splits.save(run_dir / "split.json")
        write_json_atomic(run_dir / "stats.json", data.stats.to_dict())
    context.broadcast_parameters(model)
    objective = build_objective(loss_config, data.stats, training.force_source,
                                extra_scales=_extra_scales(tasks, data.train.records),
                                count_average=context.average)  # shared loss denominators
    force_mode = "both" if objective.needs_conservative_forces else "direct"
    balancer = build_balancer(loss_config, tasks, model, average=context.average,
                              seed=training.seed).to(device)
    optimizer = torch.optim.AdamW(
        [{"params": list(model.parameters()), "weight_decay": training.weight_decay},
         {"params": balancer.optimizer_parameters(), "weight_decay": 0.0}],
        lr=training.lr, fused=device.type in ("cpu", "cuda"))  # fused: ~6x faster on CPU
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    model_parameters = list(model.parameters())
    steps_per_epoch = _steps_per_epoch(len(data.train), training.batch_size, context.world_size)
    schedule = LearningRateSchedule(training, _total_steps(training, steps_per_epoch))
    ema = ExponentialMovingAverage(model, training.ema_decay) if training.ema_decay > 0 else None
    shuffle = torch.Generator().manual_seed(training.seed)
    # Different latent-sampling noise on every process (the same as one process on rank 0).
    torch.manual_seed(training.seed + 1 + context.rank)

    state = ckpt.TrainingProgress()
    if resume:
        payload = ckpt.load_checkpoint(checkpoint_path)
        _warn_about_changes(payload, config)
        state = ckpt.restore(payload, model=model, optimizer=optimizer, schedule=schedule,
                             ema=ema, balancer=balancer)
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
    bar = _progress_bar(progress and context.is_main, state.step, schedule.total_steps)

    def evaluation_model():
        return ema.model if ema is not None else model

    session_start = time.monotonic()
    elapsed_before = state.elapsed_s
    last_checkpoint = state.step if resume else None  # step of the last checkpoint written

    def elapsed() -> float:
        return elapsed_before + time.monotonic() - session_start

    def save_best(metrics: dict) -> None:
        state.elapsed_s = elapsed()
        summary = _summary(state, metrics, config, stopped_because="")
        save_model(evaluation_model(), run_dir / MODEL_NAME,
                   metadata=_metadata(data, config, summary))

    def validate() -> None:
        """Evaluate the averaged model, keep it if best, update plateau and early stopping."""
        score = math.nan
        if context.is_main:
            metrics = evaluate(evaluation_model(), data.validation, forces=training.force_source)
            score = validation_score(metrics, data.stats, loss_config.weights,
                                     _extra_scales(tasks, data.train.records),
                                     mean_atoms=_mean_atoms(data.validation))
            validation_log.write({"step": state.step, "epoch": state.epoch, "score": score,
                                  **metrics})
            tensorboard.write(metrics, state.step, prefix="validation/")
            if score < state.best_score:
                state.best_metrics = {k: float(v) for k, v in metrics.items()}
                save_best(metrics)
            logger.info("step %d: validation %s", state.step, _short(metrics))
            bar.set_postfix_str("val " + _short(metrics), refresh=False)
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
                                 rng=rng, metadata=_metadata(data, config, {}))
        last_checkpoint = state.step

    # ---- the loop: one global batch per step ---------------------------------------------------
    stopped_because = _stop_reason(state, training, steps_per_epoch, elapsed(), context)
    while not stopped_because:
        if not state.epoch_order:  # a new epoch: a new order of the training structures
            state.epoch_order = torch.randperm(len(data.train), generator=shuffle).tolist()
        start = state.batch_in_epoch * training.batch_size
        global_batch = state.epoch_order[start:start + training.batch_size]
        batch = data.train.collate(context.shard(global_batch), dtype=dtype).to(device)

        model.train()
        outputs = model(batch, forces=force_mode)
        losses = objective(outputs, batch, state.step)
        _stop_if_not_finite(losses.as_floats(), state.step, last_checkpoint,
                            checkpoint_path, context)
        if training.gradient_cosine_every and state.step % training.gradient_cosine_every == 0 \
                and len(losses.present_tasks()) > 1:
            cosines = gradient_cosines(losses.present_tasks(), shared_parameters(model),
                                       average=context.average)

        optimizer.zero_grad(set_to_none=True)
        total = balancer.backward(losses, state.step)
        context.average_gradients(trained)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(
            model_parameters, training.grad_clip if training.grad_clip else math.inf))
        _stop_if_not_finite({"gradient norm": grad_norm}, state.step, last_checkpoint,
                            checkpoint_path, context)
        lr = schedule.lr(state.step, _shared_elapsed(elapsed(), training, context))
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        if ema is not None:
            ema.update(model)

        state.step += 1
        state.batch_in_epoch += 1
        if state.batch_in_epoch == steps_per_epoch:
            state.epoch, state.batch_in_epoch, state.epoch_order = state.epoch + 1, 0, []
        window.add({"loss_total": float(total), **losses.as_floats(), "grad_norm": grad_norm})
        bar.update(1)

        if state.step % training.log_every == 0 and context.is_main:
            row = {"step": state.step, "epoch": state.epoch, "time_s": round(elapsed(), 2),
                   "lr": lr, **window.means(),
                   **{f"weight_{task}": w for task, w in balancer.weights().items()},
                   **{f"cos_{pair}": value for pair, value in cosines.items()}}
            if metrics_log.columns is None:
                metrics_log.columns = _metric_columns(tasks, objective, balancer)
            metrics_log.write(row)
            tensorboard.write(row, state.step, prefix="train/")
            bar.set_description(_short_losses(row), refresh=False)
            window, cosines = RunningMeans(), {}
        if data.validation and state.step % training.validate_every == 0:
            validate()
        if state.step % training.checkpoint_every == 0:
            save_checkpoint()
        stopped_because = _stop_reason(state, training, steps_per_epoch, elapsed(), context)

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
        _finish_model_file(best_path, data, config, state, stopped_because)
        if data.test:
            from tridft.model.persistence import load_model
            result.test_metrics = evaluate(load_model(best_path).to(device), data.test,
                                           forces=training.force_source)
            write_json_atomic(run_dir / "test_metrics.json", result.test_metrics)
        tensorboard.close()
    logger.info("training stopped (%s) after %d steps, %.0f s", stopped_because, state.step,
                result.elapsed_s)
    return result


# ---- data -------------------------------------------------------------------------------------


def load_data(config: TrainConfig, run_dir: Path, resume: bool) -> RunData:
    """Read the structures, split them (or reuse the run's split), compute training statistics."""
    data_config = config.data
    keys = keys_from_mapping(data_config.keys, "data.keys")
    units = units_from_mapping(data_config.units, "data.units")
    train_path = Path(data_config.train) if data_config.train else bundled_dataset_path()
    records = read_structures(train_path, keys=keys, units=units)
    if data_config.max_structures is not None:
        records = records[:data_config.max_structures]
    validation = read_structures(data_config.validation, keys, units) \
        if data_config.validation else None
    test = read_structures(data_config.test, keys, units) if data_config.test else None

    split_path = run_dir / "split.json"
    if resume and split_path.is_file():
        splits = Splits.load(split_path)
        if splits.n != len(records):
            raise CheckpointError(f"{split_path}: made for {splits.n} structures, but "
                                  f"{train_path} now gives {len(records)}")
    else:
        splits = make_splits(len(records), _split_counts(config, len(records),
                                                         validation is not None,
                                                         test is not None),
                             seed=data_config.split.seed)
    if not splits.train:
        raise InputError("the training split is empty", path=str(train_path))
    plan = plan_tasks(config, [records[i] for i in splits.train], str(train_path))
    records = plan.conform(records)  # labels of further heads in their kind's shape
    train_set = GraphDataset([records[i] for i in splits.train], config.model.cutoff)
    stats = train_set.stats(isolated_atoms=data_config.reference_energies)
    domain = Domain.from_records(train_set.records, train_set.cutoff,
                                 [train_set.neighbor_list(i) for i in range(len(train_set))],
                                 stats.reference_energies)
    held_out = {"validation": validation if validation is not None
                else [records[i] for i in splits.validation],
                "test": test if test is not None else [records[i] for i in splits.test]}
    held_out = {name: _comparable(plan.conform(part), name, stats)
                for name, part in held_out.items()}
    return RunData(domain=domain, plan=plan,
        train=train_set, validation=held_out["validation"], test=held_out["test"],
        splits=splits, stats=stats,
        sources={"train": str(train_path), "validation": data_config.validation,
                 "test": data_config.test})


def _comparable(records: list[Record], name: str, stats: DatasetStats) -> list[Record]:
    """``records`` without the energy labels that the reference energies cannot predict
    (compositions the training compositions do not determine), with one warning."""
    records, dropped = without_unsupported_energies(records, stats.reference_support)
    if dropped:
        logger.warning("%d %s structures have compositions whose energy the training "
                       "compositions do not determine: their energies are not compared "
                       "(see data.reference_energies)", dropped, name)
    return records


def _split_counts(config: TrainConfig, n: int, separate_validation: bool,
                  separate_test: bool) -> tuple[int, int, int]:
    """(train, validation, test) counts; a split value below 1 is a fraction of ``n``."""
    split = config.data.split

    def count(value: float, separate: bool) -> int:
        if separate:
            return 0
        return int(round(value * n)) if value < 1 else int(value)

    n_validation = count(split.validation, separate_validation)
    n_test = count(split.test, separate_test)
    if n_validation + n_test >= n:
        raise ConfigError(f"data.split: {n_validation} validation + {n_test} test structures "
                          f"leave none of the {n} for training")
    return n - n_validation - n_test, n_validation, n_test


def _mean_atoms(records: list[Record]) -> float:
    return float(np.mean([r.n_atoms for r in records])) if records else 1.0


def _extra_scales(tasks: list[str], records: list[Record]) -> dict[str, float]:
    """RMS of the labels of tasks that DatasetStats has no scale for (extra heads)."""
    scales = {}
    for task in tasks:
        if task in TASK_SCALES:
            continue
        values = [np.ravel(r.label(task)) for r in records if r.has(task)]
        rms = float(np.sqrt(np.mean(np.concatenate(values) ** 2))) if values else 0.0
        scales[task] = rms if rms > 0 else 1.0
    return scales


# ---- set-up checks -----------------------------------------------------------------------------


def _should_resume(run_dir: Path, checkpoint_path: Path, resume: bool) -> bool:
    """Whether there is a checkpoint to resume from (CheckpointError: no such run)."""
    if resume:
        if checkpoint_path.is_file():
            return True
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir}: no such run to resume")
        logger.warning("%s has no checkpoint yet: starting from scratch", run_dir)
    return False


def _check_run_dir(config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """run_dir usable as asked, and none of the data files one that the run writes."""
    check_run_dir(config.run_dir, resume, overwrite)
    inputs = {f"data.{k}": getattr(config.data, k) for k in ("train", "validation", "test")}
    check_not_inside(config.run_dir, list(RUN_FILES), inputs)


def _lock_run_dir(lock: RunDirLock, run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Lock run_dir (creating it), then check again what is in it: another trainer may
    have come between the first check and the lock."""
    lock.acquire()
    check_run_dir(run_dir, resume, overwrite, locked=True)


def _on_rank_zero(context: distributed.Context, function, *args) -> None:
    """Run ``function`` on rank 0; its TriDFTError stops every process (not a hang)."""
    problem = None
    if context.is_main:
        try:
            function(*args)
        except TriDFTError as error:
            problem = error
    if context.any(problem is not None):
        raise problem or TriDFTError("the first process (rank 0) stopped the run; "
                                     "see its message")


def _shared_elapsed(elapsed_s: float, training, context: distributed.Context) -> float:
    """Rank 0's training time where the learning rate depends on it (a time limit):
    every process then sets the same rate."""
    if training.time_limit_minutes is None or not context.is_distributed:
        return elapsed_s
    return context.broadcast_float(elapsed_s)


def _clear_run_dir(run_dir: Path, context: distributed.Context) -> None:
    """Create run_dir and remove what an earlier run left there (rank 0), before a fresh run."""
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in (ckpt.CHECKPOINT_NAME, "metrics.csv", "validation.csv",
                     "test_metrics.json", MODEL_NAME):
            (run_dir / name).unlink(missing_ok=True)
    context.barrier()


def _warn_about_changes(payload: dict, config: TrainConfig) -> None:
    saved = payload["model"].get("metadata", {}).get("config")
    if saved is None:
        return
    current = config.model_dump(mode="json")
    changed = [f"{section}.{key}" for section in current if isinstance(current[section], dict)
               for key in current[section]
               if saved.get(section, {}).get(key) != current[section][key]]
    if changed:
        logger.warning("resuming with a changed configuration: %s", ", ".join(changed))


# ---- limits and guards ---------------------------------------------------------------------------


def _steps_per_epoch(n_train: int, batch_size: int, world_size: int) -> int:
    """Global batches per epoch; a last batch too small to give every process a structure
    is dropped."""
    full, rest = divmod(n_train, batch_size)
    steps = full + (rest >= world_size and rest > 0)
    if steps == 0:
        raise ConfigError(f"training.batch_size: {n_train} training structures cannot fill a "
                          f"batch for {world_size} processes")
    return steps


def _total_steps(training, steps_per_epoch: int) -> int | None:
    limits = [training.max_steps] if training.max_steps else []
    if training.max_epochs:
        limits.append(training.max_epochs * steps_per_epoch)
    return min(limits) if limits else None


def _stop_reason(state: ckpt.TrainingProgress, training, steps_per_epoch: int, elapsed_s: float,
                 context: distributed.Context) -> str:
    """Why training stops now ("" to go on); every process gets the same answer."""
    reason = ""
    if training.max_steps is not None and state.step >= training.max_steps:
        reason = "max_steps"
    elif training.max_epochs is not None and state.epoch >= training.max_epochs:
        reason = "max_epochs"
    elif (training.early_stopping_patience is not None
          and state.validations_without_improvement >= training.early_stopping_patience):
        reason = "early_stopping"
    elif training.time_limit_minutes is not None and elapsed_s >= 60 * training.time_limit_minutes:
        reason = "time_limit"
    if context.is_distributed:  # the clock may differ between processes: rank 0 decides
        codes = ["", "max_steps", "max_epochs", "early_stopping", "time_limit"]
        reason = codes[int(context.broadcast_float(codes.index(reason)))]
    return reason


def _stop_if_not_finite(values: dict[str, float], step: int, last_checkpoint: int | None,
                        checkpoint_path: Path, context: distributed.Context) -> None:
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if not context.any(bool(bad)):
        return
    where = (f"the last good checkpoint is {checkpoint_path} (step {last_checkpoint})"
             if last_checkpoint is not None else "no checkpoint was written yet")
    terms = ", ".join(f"{name} = {value}" for name, value in bad.items()) or "on another process"
    raise TriDFTError(f"step {step}: non-finite training loss ({terms}); {where}. "
                      f"Check the labels, or lower training.lr")


# ---- validation score, logging, model file --------------------------------------------------------


def validation_score(metrics: dict, stats: DatasetStats, weights: dict[str, float],
                     extra_scales: dict[str, float], mean_atoms: float = 1.0) -> float:
    """sum over tasks of weight * MAE / scale: dimensionless, lower is better.

    The scales are those of the loss (per atom for energy and polarizability), so
    each task counts as much as it does in training with fixed weights.
    """
    scaled = {
        "energy": (metrics.get("energy_mae_per_atom"), stats.energy_per_atom_scale),
        "forces": (metrics.get("forces_mae"), stats.forces_rms),
        "conservative_forces": (metrics.get("conservative_forces_mae"), stats.forces_rms),
        "polarizability": (metrics.get("polarizability_mae"),
                           stats.polarizability_scale * mean_atoms),
        "dipole": (metrics.get("dipole_mae"), stats.dipole_scale),
    }
    score = 0.0
    for task, weight in weights.items():
        mae, scale = scaled.get(task, (metrics.get(f"{task}_mae"), extra_scales.get(task, 1.0)))
        if weight > 0 and mae is not None:
            score += weight * mae / scale
    return score


class RunningMeans:
    """Means of logged values over the steps since the last log line."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] for key in self.sums}


def _metric_columns(tasks: list[str], objective, balancer) -> list[str]:
    pairs = [f"cos_{a}|{b}" for i, a in enumerate(tasks) for b in tasks[i + 1:]]
    return (["step", "epoch", "time_s", "lr", "loss_total"]
            + [f"loss_{task}" for task in tasks]
            + [f"reg_{term.name}" for term in objective.regularizers]
            + ["grad_norm"] + [f"weight_{task}" for task in tasks] + pairs)


def _short(metrics: dict) -> str:
    """'E 12.3 meV F 45.6 meV/A a 0.012 A^3' for the progress bar and the log."""
    parts = []
    if "energy_mae" in metrics:
        parts.append(f"E {1000 * metrics['energy_mae']:.1f} meV")
    if "forces_mae" in metrics:
        parts.append(f"F {1000 * metrics['forces_mae']:.1f} meV/A")
    if "conservative_forces_mae" in metrics:
        parts.append(f"-dE/dR {1000 * metrics['conservative_forces_mae']:.1f} meV/A")
    if "polarizability_mae" in metrics:
        parts.append(f"a {metrics['polarizability_mae']:.4f} A^3")
    return " ".join(parts)


_SHORT_TASK_NAMES = {"energy": "E", "forces": "F", "conservative_forces": "-dE/dR",
                     "polarizability": "a"}


def _short_losses(row: dict) -> str:
    """'loss 0.52 (E 0.1 F 0.03 a 0.2)': the total and normalised task losses, for the bar."""
    tasks = " ".join(f"{_SHORT_TASK_NAMES.get(key[5:], key[5:])} {value:.2g}"
                     for key, value in row.items()
                     if key.startswith("loss_") and key != "loss_total")
    return f"loss {row['loss_total']:.3g} ({tasks})"


def _progress_bar(enabled: bool, initial: int, total: int | None):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    # disable=None: tqdm shows itself only on a terminal.
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, disable=None)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix_str(self, text: str, refresh: bool = True) -> None: ...
    def set_description(self, text: str, refresh: bool = True) -> None: ...
    def close(self) -> None: ...


def _summary(state: ckpt.TrainingProgress, metrics: dict, config: TrainConfig,
             stopped_because: str) -> dict:
    return {"step": state.step, "epoch": state.epoch, "elapsed_s": round(state.elapsed_s, 1),
            "validation_metrics": {k: float(v) for k, v in metrics.items()},
            "force_source": config.training.force_source, "stopped_because": stopped_because}


def _metadata(data: RunData, config: TrainConfig, summary: dict) -> dict:
    """Plain data saved with the model: statistics, split, units, configuration, summary."""
    return {"stats": data.stats.to_dict(), "split": data.splits.to_dict(),
            "data": dict(data.sources), "units": dict(INTERNAL_UNITS),
            "config": config.model_dump(mode="json"), "training": summary,
            **({"tasks": data.plan.to_dict()} if data.plan is not None else {}),
            **({"domain": data.domain.to_dict()} if data.domain is not None else {})}


def _finish_model_file(path: Path, data: RunData, config: TrainConfig,
                       state: ckpt.TrainingProgress, stopped_because: str) -> None:
    """Add how the run ended to the saved model's training summary, and calibrate its
    uncertainty on the training and validation splits."""
    from tridft.model.persistence import load_model

    model = load_model(path)
    model.uncertainty = _calibrated_uncertainty(model, data)
    summary = dict(model.metadata.get("training", {}))
    summary.update({"total_steps": state.step, "total_elapsed_s": round(state.elapsed_s, 1),
                    "best_step": state.best_step, "stopped_because": stopped_because})
    save_model(model, path, metadata={**model.metadata, "training": summary})


def _calibrated_uncertainty(model, data: RunData):
    """The model's LLPR fitted on the run's splits (tridft.uncertainty), or None."""
    from tridft.uncertainty.calibrate import fit_uncertainty

    if not data.validation:
        logger.warning("no validation structures: the model gets no uncertainty calibration")
        return None
    try:
        return fit_uncertainty(model, data.train.records, data.validation)
    except InputError as error:
        logger.warning("no uncertainty calibration: %s", error)
        return None
