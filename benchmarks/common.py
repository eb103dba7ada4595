"""What every training benchmark shares, under one name: ``import common``.

A benchmark is a grid of training runs. Each run

1. writes its training, validation and test structures to extxyz files (the
   training labels possibly changed: noise added, labels dropped),
2. trains with tridft's own trainer (``tridft.train.loop.train``) under a
   configuration that differs from the benchmark's base settings only by the
   run's overrides,
3. evaluates the best (validation-selected) model on the CLEAN test structures,

and is appended to a JSON results file as soon as it finishes, so that an
interrupted benchmark keeps every finished run and, started again, skips them.

The pieces live in small modules of this folder; this one gathers their names:

- ``paths``: ROOT, RESULTS, FIGURES;
- ``ethanol_split``: the fixed split of the bundled ethanol (Benchmark,
  load_benchmark_data), write_extxyz, copy_records;
- ``training_run``: BASE_SETTINGS, QUICK_SETTINGS, TASKS, merge, train_and_test;
- ``results_file``: ResultsFile, summarize, run_grid, reusable_run;
- ``provenance``: environment (code, machine, versions);
- ``command_line``: parser, output_path, setup_logging;
- ``measure`` and ``water`` (no tridft import, for the peers' environment too):
  peak memory, timed calls, the processor; the periodic water boxes.
"""

from __future__ import annotations

from command_line import output_path, parser, setup_logging  # noqa: F401
from ethanol_split import (N_POOL, N_TEST, N_VALIDATION, QUICK_SIZES, SPLIT_SEED,  # noqa: F401
                           Benchmark, copy_records, load_benchmark_data, write_extxyz)
from paths import FIGURES, RESULTS, ROOT  # noqa: F401
from provenance import code_state, environment  # noqa: F401
from results_file import (PARAMETER_KEYS, SUMMARY_METRICS, ResultsFile,  # noqa: F401
                          logger, reusable_run, run_grid, summarize)
from training_run import BASE_SETTINGS, QUICK_SETTINGS, TASKS, merge, train_and_test  # noqa: F401

from tridft.data.io import bundled_dataset_path, read_structures  # noqa: F401
from tridft.files import write_json_atomic  # noqa: F401
