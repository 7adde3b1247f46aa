"""Synthesize many utterances on all cores: cached ones are returned at once, the rest go to a process pool.

Each worker process builds its engines once (the registry keeps one instance per process) with onnxruntime capped
to its share of the cores, so workers do not fight over threads. Work is sent longest text first, which keeps the
cores busy to the end and makes the progress bar's estimate honest. A failing item yields its exception in its slot.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from salad_core.tts.base import TTSError, VoiceSpec
from salad_core.tts.cache import TTSCache, cache_path, synthesize
from salad_core.tts.registry import get_engine

Job = tuple[str, VoiceSpec]


def _broadcast(texts: Sequence[str], specs: VoiceSpec | Sequence[VoiceSpec]) -> list[VoiceSpec]:
    if isinstance(specs, VoiceSpec):
        return [specs] * len(texts)
    if len(specs) != len(texts):
        raise TTSError(
            f"synthesize_many got {len(texts)} texts but {len(specs)} voice specs. Fix: pass one spec, or one per text."
        )
    return list(specs)


def _portable(err: Exception) -> Exception:
    """The error itself if it survives pickling (to cross back from a worker), else a TTSError with its message."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return TTSError(f"{type(err).__name__}: {err}")


def _work(text: str, spec: VoiceSpec, cache: TTSCache, threads: int | None) -> Path | Exception:
    try:
        return synthesize(text, spec, cache=cache, engine=get_engine(spec.engine, threads))
    except Exception as err:  # one bad item must not stop the batch
        return _portable(err)


def _serial(jobs: dict[Path, Job], cache: TTSCache) -> Iterator[tuple[Path, Path | Exception]]:
    for path, (text, spec) in jobs.items():
        yield path, _work(text, spec, cache, None)


def _pooled(jobs: dict[Path, Job], cache: TTSCache, workers: int) -> Iterator[tuple[Path, Path | Exception]]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    left = dict(jobs)
    try:
        # spawn, not fork: the parent may hold torch/onnxruntime thread pools that do not survive a fork.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_work, text, spec, cache, threads): path for path, (text, spec) in jobs.items()}
            for future in as_completed(futures):
                outcome = future.result()  # `_work` returns errors; only a broken pool raises here
                yield futures[future], outcome
                left.pop(futures[future])
    except BrokenProcessPool:
        # The workers could not start (a __main__ that spawn cannot re-import, e.g. `python -` or `-c`) or one died:
        # finish the rest in this process rather than fail them all.
        yield from _serial(left, cache)


def synthesize_many(
    texts: Sequence[str],
    specs: VoiceSpec | Sequence[VoiceSpec],
    *,
    workers: int | None = None,
    progress: bool = True,
    cache: TTSCache | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[Path | Exception]:
    """Cached FLAC paths of every (text, spec), in input order; a failed item holds its exception instead.

    `workers` defaults to all cores; a single job (or `workers=1`) runs in this process with no pool. `on_done(n)`
    is called as items finish (n of them at a time, cached ones first), for a caller's own progress display.
    """
    cache = cache or TTSCache()
    results: list[Path | Exception | None] = [None] * len(texts)
    slots: dict[Path, list[int]] = {}  # identical requests share one synthesis
    jobs: dict[Path, Job] = {}
    for i, (text, spec) in enumerate(zip(texts, _broadcast(texts, specs))):
        try:
            path = cache_path(text, spec, cache)
        except Exception as err:
            results[i] = err
            continue
        if path.exists():
            results[i] = path
        else:
            slots.setdefault(path, []).append(i)
            jobs.setdefault(path, (text, spec))
    if on_done is not None:
        on_done(sum(r is not None for r in results))
    jobs = dict(sorted(jobs.items(), key=lambda item: -len(item[1][0])))
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    outcomes = _pooled(jobs, cache, workers) if workers > 1 else _serial(jobs, cache)
    for path, outcome in tqdm(outcomes, total=len(jobs), disable=not progress or not jobs, file=sys.stderr, desc="tts"):
        for i in slots[path]:
            results[i] = outcome
        if on_done is not None:
            on_done(len(slots[path]))
    return results  # type: ignore[return-value]
