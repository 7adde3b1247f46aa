"""Wall time of the whole Stage I pipeline, stage by stage: world build (text, speech synthesis and encoder frames,
with the world LM's pretraining running beside them), Stage I training with the preset's recipe, and the final
evaluation.

    python benchmarks/stage1_pipeline.py --preset nano --fresh      # everything from scratch, in a temporary cache
    python benchmarks/stage1_pipeline.py --preset mini --fresh      # the issue's target: build + Stage I <= 20 min
    python benchmarks/stage1_pipeline.py --preset mini --max-steps 200   # reuse what is cached, a shorter run
    python benchmarks/stage1_pipeline.py --preset mini --fresh --processes 2   # Stage I as 2 CPU processes (DDP)

`--fresh` points SALAD_CACHE and SALAD_DATA at empty temporary folders, so TTS, the Whisper conversion, the world and
its LM are all built again (nothing is downloaded: the models come from the installed offline packages).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from salad_core.jobs import cpu_ddp_command
from salad_core.world.lm import LM_FOLDER

REPO = Path(__file__).resolve().parent.parent


def timed(label: str, args: list[str], env: dict, processes: int = 1) -> tuple[float, str]:
    start = time.perf_counter()
    command, extra = cpu_ddp_command(args, processes)  # several: the CPU data-parallel form of docs/training.md
    env = {**env, **extra}
    done = subprocess.run(command, env=env, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{label} failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    print(f"{label:<28} {seconds:8.1f} s", flush=True)
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="nano", choices=("nano", "mini"))
    parser.add_argument("--fresh", action="store_true", help="empty temporary cache and data folders")
    parser.add_argument("--max-steps", type=int, help="override the recipe's step count")
    parser.add_argument("--tag", default="pipeline", help="tag of the Stage I run in the store")
    parser.add_argument("--processes", type=int, default=1, help="train Stage I as this many CPU processes (DDP)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.fresh:
        env["SALAD_CACHE"] = tempfile.mkdtemp(prefix="salad-cache-")
        env["SALAD_DATA"] = tempfile.mkdtemp(prefix="salad-data-")
    times = {}
    times["world build"], out = timed("world build (speech + LM)", ["world", "build", "--corpus", args.preset, "--json"], env)
    built = json.loads(out)
    print(f"{'  of which speech':<28} {built['build_s']['speech_s']:8.1f} s ({built['n_clips']} clips)")
    lm = json.loads((Path(built["root"]) / LM_FOLDER / "lm_report.json").read_text())
    print(f"{'  beside it, LM pretraining':<28} {lm['wall_s']:8.1f} s ({lm['steps']} steps, threads {lm['threads']})")
    train = ["train", "--preset", args.preset, "--json", "--tag", args.tag] + (["--max-steps", str(args.max_steps)] if args.max_steps else [])
    times["Stage I + final eval"], out = timed("Stage I + final eval", train, env, args.processes)
    summary = json.loads(out)
    times["of which training"] = summary["wall_s"]
    total = times["world build"] + times["Stage I + final eval"]
    print(f"{'of which training':<28} {summary['wall_s']:8.1f} s ({summary['steps']} steps)")
    print(f"{'total':<28} {total:8.1f} s = {total / 60:.1f} min")
    speech = {t: round(v["speech_acc"], 3) for t, v in summary["eval"]["tasks"].items() if v.get("speech_acc") is not None}
    print(f"final speech accuracy per task: {speech}")


if __name__ == "__main__":
    main()
