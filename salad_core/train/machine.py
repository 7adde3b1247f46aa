"""The machine a run trains on: what it is (recorded per start or resume in the run folder's machines.jsonl), its
cores for the evaluation, which the main process runs alone, and each process's share of a batch."""

from __future__ import annotations

import contextlib
import os
import time

import torch

from salad_core.errors import TrainingError


@contextlib.contextmanager
def every_core_while_others_wait():
    """Evaluation runs on the main process alone while the others wait (or have finished). Under `accelerate launch`
    on the CPU each process was given one thread; for the evaluation the main one takes every core."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes == 1 or state.device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def machine(accelerator) -> dict:
    """What trains: the host's CPU and GPU, the processes and the device, with the time this session started."""
    import platform

    device = accelerator.device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": platform.node(),
            "platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cpu_cores": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
            "device": device.type, "gpu": gpu, "processes": accelerator.num_processes, "torch": torch.__version__}


def process_share(batch_size: int, processes: int) -> int:
    """Documents per process in a micro-batch: `batch_size` is the global count, so the same command trains the
    same model (up to float summation order) on one process or several."""
    if batch_size % processes:
        raise TrainingError(f"batch size {batch_size} does not split over {processes} processes. Fix: pass a "
                            f"--batch-size that is a multiple of {processes}.")
    return batch_size // processes
