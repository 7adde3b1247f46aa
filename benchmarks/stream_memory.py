"""Memory and speed of the streamed speech pipeline (`salad train --speech`) as the corpus grows (issue 34): peak
resident memory must not grow with the corpus, and the data workers must supply the speech a training step hears.

    python benchmarks/stream_memory.py              # 10x and 100x; a JSONL manifest and a datasets folder; 1, 2 workers
    python benchmarks/stream_memory.py --kinds jsonl --workers 2 --copies 10,100 --base-repeats 7
    python benchmarks/stream_memory.py --no-train               # the data pipeline only

The base corpus is the nano world's natural speech (`salad world export --speech-dataset`: 15 documents, 123
utterances) written out as FLAC files, repeated `--base-repeats` times; each larger corpus repeats the base under new
utterance and document ids (the same files: nothing is copied), as a salad JSONL manifest and as a `datasets` folder
(the audio embedded as bytes, as the export writes it). Each corpus is streamed once, in a fresh process per run so
that its peak RSS is its own, through what training runs: `SourceDocuments` (decode, plan the spans, log-mel) in
`DataLoader` workers, then `SourceWindows` (windows of 1,024 documents, sorted, cut into batches). The encoder is not
run there (it belongs to the training step); `--encode-batches N` times it on the first N batches apart.

The 10x corpus must already fill a window (1,024 documents): the window is the pipeline's fixed memory, so below it
memory grows with the corpus by design. Hence the base of 7 copies (105 documents, 16 min): 10x is 1,050 documents
and 2.7 h of audio, 100x 10,500 documents, 86,100 utterances and 27 h, which one run streams in 60-85 s on the
project's 2-core machine shared with other jobs (the whole benchmark: about 15 minutes). Peak RSS is the process's
own (VmHWM; ru_maxrss would count its parent's too) and, for the workers, the largest one's; the main process reads
each batch's features as the encoder would, which maps the workers' shared memory in. Training demand is read from
a short `salad train --preset nano --speech` run on the 10x manifest: the speech its steps hear per second of step
(the first step, which waits for the window, left out); supply/demand says how many times faster the workers prepare
speech than a step uses it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's salad_core, not an installed one
ENCODER = "openai/whisper-tiny.en"  # the mini and nano presets'
TOLERANCE = 0.10  # the bound: peak RSS at the largest corpus within 10 % of that at the smallest


# -- the corpora --------------------------------------------------------------------------------------------------

def export_base(folder: Path, repeats: int) -> list[dict]:
    """The nano world's speech as FLAC files plus one row per utterance, the whole repeated `repeats` times."""
    import datasets
    import soundfile as sf

    out = folder / "export"
    command = [sys.executable, "-m", "salad_core.cli", "world", "export", "--corpus", "nano", "--out", str(out),
               "--speech-dataset", "--json"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"salad world export failed:\n{done.stderr[-2000:]}")
    rows = datasets.load_from_disk(str(out / "speech")).cast_column("audio", datasets.Audio(decode=False))
    (folder / "audio").mkdir(exist_ok=True)
    base = []
    for row in rows:
        path = folder / "audio" / f"{row['id']}.flac"
        path.write_bytes(row["audio"]["bytes"])
        base.append({"id": row["id"], "audio": str(path), "text": row["text"], "doc": row["doc"], "pos": row["pos"],
                     "seconds": sf.info(str(path)).duration})
    return [{**r, "id": f"{r['id']}~b{k}", "doc": f"{r['doc']}~b{k}"} for k in range(repeats) for r in base]


def copies_of(base: list[dict], copies: int):
    """The base's rows `copies` times over, each copy's utterances and documents under new ids."""
    for k in range(copies):
        for row in base:
            yield {"id": f"{row['id']}~{k}", "audio": row["audio"], "text": row["text"], "doc": f"{row['doc']}~{k}",
                   "pos": row["pos"]}


def write_manifest(base: list[dict], copies: int, path: Path) -> str:
    """A salad JSONL manifest of the copies (audio: the base's files)."""
    with path.open("w") as out:
        for row in copies_of(base, copies):
            out.write(json.dumps(row) + "\n")
    return str(path)


def write_dataset(base: list[dict], copies: int, folder: Path) -> str:
    """A `datasets` folder (save_to_disk) of the same rows, each with its audio's bytes, as an export writes it."""
    from datasets import Audio, Dataset, Features, Value

    data = {row["audio"]: Path(row["audio"]).read_bytes() for row in base}
    features = Features({"id": Value("string"), "audio": {"bytes": Value("binary"), "path": Value("string")},
                         "text": Value("string"), "doc": Value("string"), "pos": Value("int32")})

    def rows():
        for row in copies_of(base, copies):
            yield {**row, "audio": {"bytes": data[row["audio"]], "path": None}}

    with tempfile.TemporaryDirectory(prefix="stream-memory-") as scratch:
        dataset = Dataset.from_generator(rows, features=features, cache_dir=scratch)
        dataset.cast_column("audio", Audio(sampling_rate=16000)).save_to_disk(str(folder))
    return f"hf:{folder}"


# -- one streamed pass, in its own process ------------------------------------------------------------------------

class AnonPeak:
    """Samples the anonymous resident memory (RssAnon) of this process and of its children (the workers): peak RSS
    also counts the pages of files mapped in (a memory-mapped dataset's, which the kernel may drop at will)."""

    def __init__(self, every: float = 0.05):
        self.main = self.workers = 0
        self.every, self._stop = every, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.wait(self.every):
            self.main = max(self.main, _anon_kib(pid))
            children = Path(f"/proc/{pid}/task/{pid}/children")
            for child in children.read_text().split() if children.exists() else []:
                self.workers = max(self.workers, _anon_kib(int(child)))


def _anon_kib(pid: int) -> int:
    return _status_kib(pid, "RssAnon")


def _status_kib(pid: int | str, field: str) -> int:
    """A field of /proc/PID/status, in KiB; 0 when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith(f"{field}:")), 0)


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM): ru_maxrss would also count its parent's, kept across the exec."""
    return _status_kib("self", "VmHWM")


def stream_once(spec: str, workers: int, window_docs: int, batch_size: int, encode_batches: int) -> dict:
    """Stream the source once through the training's data path; what it read, how fast, and the peak memory."""
    from collections import Counter

    import torch

    from salad_core.model.encoder import LogMel, SpeechEncoder
    from salad_core.speech_data.sources import SpeechSource
    from salad_core.speech_data.stream import SourceDocuments
    from salad_core.train.stream_batches import _one_thread
    from salad_core.train.windows import SourceWindows

    torch.set_num_threads(1)
    # the pipeline alone: the encoder (whose weights the training process holds) is loaded only to be timed
    encoder = SpeechEncoder.load(ENCODER) if encode_batches else None
    log_mel = encoder.log_mel if encoder is not None else LogMel(n_mels=80)  # whisper-tiny.en's front end
    source = SpeechSource.parse(spec)

    def open_at(start: int):
        dataset = SourceDocuments(source, 0, log_mel, seed=0, start=start)
        return iter(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers,
                                                worker_init_fn=_one_thread, prefetch_factor=4 if workers else None))

    stats: Counter = Counter()
    windows = SourceWindows(open_at, 0, 0, window_docs, stats)
    before = peak_rss_kib()
    batches, encode_s, encoded_s = 0, 0.0, 0.0
    with AnonPeak() as anon:
        start = time.perf_counter()
        while not (windows.loader is None and windows.batches is not None and windows.given >= len(windows.batches)):
            docs = windows.next(batch_size)
            batches += 1
            for features in (f for d in docs for f in d.features):
                features.sum()  # read as the encoder reads it: the workers' shared memory is mapped in only then
            if batches <= encode_batches:
                tick = time.perf_counter()
                encoder.encode_features([f for d in docs for f in d.features], [n for d in docs for n in d.samples])
                encode_s, encoded_s = encode_s + time.perf_counter() - tick, encoded_s + sum(d.seconds for d in docs)
        wall = time.perf_counter() - start - encode_s
    return {"documents": stats["documents"], "utterances": stats["utterances"], "heard_h": stats["heard_s"] / 3600,
            "batches": batches, "wall_s": wall, "rss_before_mb": before / 1024,
            "rss_main_mb": peak_rss_kib() / 1024,
            "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "anon_main_mb": anon.main / 1024, "anon_worker_mb": anon.workers / 1024,
            "encoder_h_per_s": encoded_s / 3600 / encode_s if encode_s else None}


def run_fresh(spec: str, workers: int, args) -> dict:
    """`stream_once` in a fresh Python process (its own peak RSS), one thread, as a training's data path runs."""
    command = [sys.executable, __file__, "--child", spec, "--workers", str(workers), "--window-docs",
               str(args.window_docs), "--batch-size", str(args.batch_size), "--encode-batches",
               str(args.encode_batches)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"streaming {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- what a training step consumes --------------------------------------------------------------------------------

def training_demand(manifest: str, preset: str, steps: int, batch_size: int, folder: Path) -> dict:
    """Hours of speech per second of training step, from a short `salad train --speech` run's train_steps: the
    steps after the first (which waits for the window of documents) and their cumulative speech and wall time."""
    from salad_core.store import Store

    db = folder / "demand.duckdb"
    command = [sys.executable, "-m", "salad_core.cli", "train", "--preset", preset, "--speech", manifest, "--max-steps",
               str(steps), "--batch-size", str(batch_size), "--warmup-steps", "2", "--eval-every", str(10 * steps),
               "--ckpt-every", str(10 * steps), "--no-final-eval", "--json", "--word-timings", "none",
               "--data-workers", "1", "--db", str(db)]
    env = {**os.environ, "SALAD_DATA": str(folder / "data")}
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"salad train failed:\n{done.stderr[-3000:]}")
    rows = Store(str(db)).train_steps(json.loads(done.stdout)["run_id"]).set_index("step")
    later = rows.loc[2:]
    speech = float(later["speech_s"].iloc[-1] - rows.loc[1, "speech_s"])
    wall = float(later["wall_s"].iloc[-1] - rows.loc[1, "wall_s"])
    step_s = statistics.median(later["wall_s"].diff().dropna())
    return {"preset": preset, "batch_size": batch_size, "steps": len(later), "speech_s_per_step": speech / len(later),
            "step_s": wall / len(later), "median_step_s": step_s, "first_step_s": float(rows.loc[1, "wall_s"]),
            "demand_h_per_s": speech / 3600 / wall}


# -- the report ---------------------------------------------------------------------------------------------------

def show(kind: str, copies: int, workers: int, run: dict, hours: float) -> None:
    """One streamed pass: its size, wall time, hours of audio (all of it decoded; and of it heard) per second per
    worker, and peak RSS (anonymous: what is not a mapped file's pages)."""
    per_worker = hours / run["wall_s"] / workers
    heard = run["heard_h"] / run["wall_s"] / workers
    print(f"{kind:<6} {copies:>4}x {workers:>2}w | {run['documents']:>6} docs {run['utterances']:>6} utts "
          f"{hours:6.2f} h audio ({run['heard_h']:5.2f} h heard) | {run['wall_s']:6.1f} s | {per_worker:6.3f} h "
          f"audio/s/worker ({heard:6.4f} h heard) | RSS main {run['rss_main_mb']:5.0f} MB (anon "
          f"{run['anon_main_mb']:4.0f}, {run['rss_before_mb']:4.0f} before) worker {run['rss_worker_mb']:5.0f} MB "
          f"(anon {run['anon_worker_mb']:4.0f})", flush=True)


def verdict(results: dict, sizes: list[int]) -> None:
    """Peak RSS of the largest corpus over the smallest's, per kind and worker count, main process and worker."""
    small, large = sizes[0], sizes[-1]
    for (kind, workers), by_size in sorted(results.items()):
        a, b = by_size[small], by_size[large]
        for who in ("main", "worker"):
            ratio = b[f"rss_{who}_mb"] / a[f"rss_{who}_mb"]
            anon = b[f"anon_{who}_mb"] / max(a[f"anon_{who}_mb"], 1e-9)
            ok = "within" if abs(ratio - 1) <= TOLERANCE else "NOT within"
            print(f"{kind:<6} {workers}w {who:<6}: peak RSS {large}x / {small}x = {ratio:.3f} ({ok} "
                  f"{TOLERANCE:.0%}); anonymous {anon:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", default="10,100", help="corpus sizes, in copies of the base")
    parser.add_argument("--base-repeats", type=int, default=7, help="the nano export repeated this often is the base")
    parser.add_argument("--kinds", default="jsonl,hf", help="jsonl (a salad manifest), hf (a datasets folder)")
    parser.add_argument("--workers", default="1,2", help="DataLoader workers")
    parser.add_argument("--window-docs", type=int, default=None, help="documents per window (the library's)")
    parser.add_argument("--batch-size", type=int, default=4, help="documents per batch (nano's)")
    parser.add_argument("--encode-batches", type=int, default=0, help="time the encoder on this many batches")
    parser.add_argument("--train-steps", type=int, default=40, help="steps of the demand run")
    parser.add_argument("--preset", default="nano", help="the demand run's preset")
    parser.add_argument("--no-train", action="store_true", help="skip the demand run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window_docs is None:
        from salad_core.train.stream_batches import WINDOW_DOCS

        args.window_docs = WINDOW_DOCS
    if args.child:
        print(json.dumps(stream_once(args.child, int(args.workers), args.window_docs, args.batch_size,
                                     args.encode_batches)))
        return
    run_all(args)


def run_all(args) -> None:
    sizes = sorted(int(c) for c in args.copies.split(","))
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as tmp:
        folder = Path(tmp)
        tick = time.perf_counter()
        base = export_base(folder, args.base_repeats)
        base_h = sum(r["seconds"] for r in base) / 3600
        print(f"base: the nano export x{args.base_repeats}: {len({r['doc'] for r in base})} documents, {len(base)} "
              f"utterances, {base_h * 60:.1f} min of audio (made in {time.perf_counter() - tick:.0f} s); window "
              f"{args.window_docs} documents, batches of {args.batch_size}", flush=True)
        results = stream_all(args, folder, base, sizes, base_h)
        verdict(results, sizes)
        encoder = [r[s]["encoder_h_per_s"] for r in results.values() for s in sizes if r[s]["encoder_h_per_s"]]
        if encoder:
            print(f"encoder ({ENCODER}, 1 thread, in the training process): {encoder[0] * 3600:.0f} s heard/s")
        if not args.no_train:
            manifest = folder / f"corpus-{sizes[0]}x.jsonl"
            if not manifest.exists():
                write_manifest(base, sizes[0], manifest)
            demand = training_demand(str(manifest), args.preset, args.train_steps, args.batch_size, folder)
            compare(results, sizes[-1], demand)


def stream_all(args, folder: Path, base: list[dict], sizes: list[int], base_h: float) -> dict:
    """Each corpus size written as each kind, streamed with each worker count: (kind, workers) -> size -> figures."""
    kinds, worker_counts = args.kinds.split(","), [int(w) for w in args.workers.split(",")]
    writers = {"jsonl": lambda n: write_manifest(base, n, folder / f"corpus-{n}x.jsonl"),
               "hf": lambda n: write_dataset(base, n, folder / f"corpus-{n}x")}
    results: dict = {}
    for copies in sizes:
        tick = time.perf_counter()
        specs = {kind: writers[kind](copies) for kind in kinds}
        print(f"{copies}x corpora written in {time.perf_counter() - tick:.0f} s", flush=True)
        for kind in kinds:
            for workers in worker_counts:
                run = run_fresh(specs[kind], workers, args)
                results.setdefault((kind, workers), {})[copies] = run
                show(kind, copies, workers, run, base_h * copies)
    return results


def compare(results: dict, size: int, demand: dict) -> None:
    """What a training step hears per second against what the workers prepare (the largest corpus's runs)."""
    need = demand["demand_h_per_s"]
    print(f"training demand ({demand['preset']}, batch {demand['batch_size']}, {demand['steps']} steps after the "
          f"first): {demand['speech_s_per_step']:.1f} s heard per step, {demand['step_s']:.3f} s per step (median "
          f"{demand['median_step_s']:.3f}; the first, with the window's wait, {demand['first_step_s']:.1f} s) "
          f"= {need:.5f} h heard/s")
    for (kind, workers), by_size in sorted(results.items()):
        supply = by_size[size]["heard_h"] / by_size[size]["wall_s"]
        print(f"supply/demand {kind:<6} {workers}w ({size}x): {supply:.4f} h heard/s = {supply / need:5.1f}x the "
              f"step's need; per worker {supply / workers:.4f} h heard/s = {supply / workers / need:5.1f}x")


if __name__ == "__main__":
    main()
