"""The ``backprop`` command line.

Subcommands, one module each (the registry is `backprop.cli.app.COMMANDS`):

- ``backprop train`` (`backprop.cli.train`): train a network on a dataset; write the
  model, metrics, history and plots into one results directory.
- ``backprop evaluate MODEL --data ...`` (`backprop.cli.evaluate`): a saved model's
  accuracy/loss or RMSE on a dataset's test split.
- ``backprop predict MODEL INPUT`` (`backprop.cli.predict`): predictions for a CSV, NPY
  or IDX file.
- ``backprop info MODEL`` (`backprop.cli.info`): what a model file holds.
- ``backprop gradcheck`` (`backprop.cli.gradcheck`): the finite-difference table for the
  notes' forms and the engine.
- ``backprop explore`` (`backprop.cli.explore`): the backward pass live in the browser.

Every user mistake (bad flag value, missing or malformed file, wrong input width) ends in
one line ``backprop <command>: error: ...`` on stderr and exit status 2, never a
traceback; a diverged training run ends in one line naming the learning rate and exit
status 1; Ctrl-C or SIGTERM in exit status 130. Nothing half-written is left behind: files
are written to a temporary name and renamed into place, and ``train`` builds its results in
a temporary directory whose files only move into ``--out`` once everything is written.

``train`` also keeps a checkpoint (``checkpoint.safetensors``) and a record of what it was
asked to do (``run.json``) in ``--out`` while it runs, both replaced atomically after every
epoch. Interrupted (Ctrl-C, SIGTERM, or even SIGKILL) after its first epoch, a run leaves
just those two files, and ``backprop train --resume DIR`` finishes it bit for bit as if it
had never stopped; a finished run deletes them. The rule, documented in docs/cli.md and
kept by `backprop.rundir`: a directory with ``metrics.json`` holds a finished run; one
with ``checkpoint.safetensors`` and no ``metrics.json`` an interrupted one.
"""

from backprop.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
