"""The project's own errors: what a user can fix, as opposed to a bug in salad.

Every error salad raises on purpose is a `SaladError` whose message names the input at fault and the fix. `salad`
prints such an error as one line and exits with code 2; any other exception is a bug and keeps its traceback.

    SaladError
    ├── InputError (also a ValueError)      a bad value given: a flag, a config field, a run id, a budget, a file
    │   └── UnknownNameError (also a KeyError)   a name salad does not know: a preset, a task
    ├── AssetError (salad_core.assets)      a model, package or data file cannot be had here
    ├── StoreError (salad_core.schema)      the results store refused an input, or is busy (StoreBusyError)
    ├── TrainingError                       training cannot go on (a NaN loss, a full disk, a checkpoint that does not fit)
    └── JobError (salad_core.jobs)          a background job could not be started, found or stopped
"""

from __future__ import annotations


class SaladError(Exception):
    """An error the user can fix; the message names the input and the fix."""


class InputError(SaladError, ValueError):
    """A bad value given to salad (a flag, a config field, a run id, a manifest, a budget)."""


class UnknownNameError(InputError, KeyError):
    """A name salad does not know (a preset, a task); a KeyError too, for callers that look names up."""

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0]) if self.args else ""


class TrainingError(SaladError, RuntimeError):
    """Training cannot go on (a NaN loss, a full disk, a checkpoint that does not fit); the message says why."""
