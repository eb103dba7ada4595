"""Before the first step: resume or not, the run folder checked, locked and cleared.

Checks that can fail run on rank 0 (:func:`on_rank_zero`), and their error stops
every process rather than leaving the others waiting.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tridft.errors import CheckpointError, TriDFTError
from tridft.outputs import check_not_inside
from tridft.train import checkpoint as ckpt
from tridft.train import distributed
from tridft.train.config import TrainConfig
from tridft.train.rundir import RUN_FILES, RunDirLock, check_run_dir
from tridft.train.selection import MODEL_NAME

logger = logging.getLogger(__name__)


def should_resume(run_dir: Path, checkpoint_path: Path, resume: bool) -> bool:
    """Whether there is a checkpoint to resume from (CheckpointError: no such run)."""
    if resume:
        if checkpoint_path.is_file():
            return True
        if not run_dir.is_dir():
            raise CheckpointError(f"{run_dir}: no such run to resume")
        logger.warning("%s has no checkpoint yet: starting from scratch", run_dir)
    return False


def check_run_dir_and_data(config: TrainConfig, resume: bool, overwrite: bool) -> None:
    """run_dir usable as asked, and none of the data files one that the run writes."""
    check_run_dir(config.run_dir, resume, overwrite)
    inputs = {f"data.{k}": getattr(config.data, k) for k in ("train", "validation", "test")}
    check_not_inside(config.run_dir, list(RUN_FILES), inputs)


def lock_run_dir(lock: RunDirLock, run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Lock run_dir (creating it), then check again what is in it: another trainer may
    have come between the first check and the lock."""
    lock.acquire()
    check_run_dir(run_dir, resume, overwrite, locked=True)


def on_rank_zero(context: distributed.Context, function, *args) -> None:
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


def clear_run_dir(run_dir: Path, context: distributed.Context) -> None:
    """Create run_dir and remove what an earlier run left there (rank 0), before a fresh run."""
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in (ckpt.CHECKPOINT_NAME, "metrics.csv", "validation.csv",
                     "test_metrics.json", MODEL_NAME):
            (run_dir / name).unlink(missing_ok=True)
    context.barrier()


def warn_about_changes(payload: dict, config: TrainConfig) -> None:
    saved = payload["model"].get("metadata", {}).get("config")
    if saved is None:
        return
    current = config.model_dump(mode="json")
    changed = [f"{section}.{key}" for section in current if isinstance(current[section], dict)
               for key in current[section]
               if saved.get(section, {}).get(key) != current[section][key]]
    if changed:
        logger.warning("resuming with a changed configuration: %s", ", ".join(changed))
