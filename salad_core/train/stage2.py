"""Stage II's starting point: the lineage's Stage I run, continued on a finished selection round."""

from __future__ import annotations

from salad_core.errors import InputError
from salad_core.runs import Lineage
from salad_core.store import Store
from salad_core.train.config import TrainConfig


def stage2_of(store: Store, from_run: str, round_id: str, **options) -> TrainConfig:
    """Stage II always continues the lineage's Stage I run from its pre-decay checkpoint (a later round adds its
    speech to the earlier rounds'), so `from_run` may be a Stage I or a Stage II run. Its decay is the one the Stage I
    run planned (runs.plan)."""
    root = Lineage.of(store).stage1(from_run)
    run = store.runs("train").set_index("run_id").loc[root]
    plan = run["plan"] if isinstance(run["plan"], dict) else {}
    return TrainConfig.stage2(TrainConfig.from_dict(run["config"]), root, round_id, plan.get("max_steps"), **options)


def latest_round(store: Store, from_run: str) -> str:
    """The newest finished selection round scored by `from_run`."""
    rounds = Lineage.of(store).children(from_run, kind="select", status="done")
    if not rounds:
        raise InputError(f"no finished selection round was made from {from_run}. Fix: run "
                         f"`salad select --from {from_run}` first, or name one with --round.")
    return rounds[0]
