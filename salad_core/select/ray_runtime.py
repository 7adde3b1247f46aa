"""Ray for a selection round: a local instance on this machine's cores, or a running cluster (`--ray-address`), and
how many actors a stage may start.

Actor pools are sized from the CPUs Ray sees, one CPU left to the tasks that feed them: on two CPUs a pool of two
actors holds both, the read task that feeds them never gets a core, and the dataset never finishes. Where Ray sees
GPUs, a model stage takes one actor per GPU instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from salad_core.errors import InputError


@dataclass(frozen=True)
class Resources:
    cpus: int
    gpus: int

    def actors(self, cpus_per_actor: float = 1.0) -> int:
        """Actors of a CPU stage: as many as fit beside one CPU kept for the tasks, and at least one."""
        return max(1, int((self.cpus - 1) // cpus_per_actor))

    def model_actors(self) -> tuple[int, float]:
        """(actors, GPUs each) of a stage that runs a model: one per GPU, else the CPU rule with none."""
        return (self.gpus, 1.0) if self.gpus else (self.actors(), 0.0)


def salad_env() -> dict[str, str]:
    """The driver's salad settings (`SALAD_DATA`, `SALAD_CACHE`, `SALAD_ALLOW_DOWNLOAD`, …): a cluster's workers
    were started with their node's environment, and read and write the same folders as the driver only with these."""
    return {name: value for name, value in os.environ.items() if name.startswith("SALAD_")}


def start_ray(address: str | None = None, cpus: int | None = None, progress: bool = False) -> Resources:
    """Join the cluster at `address` (its workers given the driver's salad settings), or start Ray here with `cpus`
    CPUs (default: this process's cores), even where `ray start` left a cluster running on this machine (Ray would
    join that one); a Ray already started in this process is kept. Ray Data's own progress bars show when
    `progress`."""
    import ray

    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address:
                ray.init(address=address, runtime_env={"env_vars": salad_env()}, **kwargs)
            else:
                ray.init(address="local", num_cpus=cpus or len(os.sched_getaffinity(0)), **kwargs)
        except ConnectionError as err:
            raise InputError(join_failure(address, err)) from err
    import ray.data

    if not progress:  # each dataset logs its start and end at INFO
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.print_on_execution_start = False
    total = ray.cluster_resources()
    return Resources(int(total.get("CPU", 1)), int(total.get("GPU", 0)))


def join_failure(address: str | None, err: Exception) -> str:
    """What went wrong joining the cluster at `address`, and the fix."""
    if "authentication" in f"{err} {err.__cause__}".lower():
        fix = ("the cluster asks for Ray's token (`ray start` turns it on where ~/.ray/auth_token exists): set "
               "RAY_AUTH_MODE=token here, with the cluster's token in RAY_AUTH_TOKEN or ~/.ray/auth_token")
    else:
        fix = ("pass the address `ray start --head` printed (ray://HOST:10001 or HOST:6379), or leave --ray-address "
               "out to run here")
    return f"Cannot join the Ray cluster at {address!r} ({err}). Fix: {fix}."
