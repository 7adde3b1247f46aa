"""The `salad` subcommands that train: `salad train` (Stage I, and Stage II with --stage 2), `salad sweep` (a grid of
Stage I runs), `salad select` (a Stage II selection round, then optionally its training) and `salad speech check`
(what a run's --speech sources hold, before it trains). The table of commands, the parser and the error handling are
`salad_core.cli`'s.
"""

from __future__ import annotations

import argparse
import json

from salad_core.console import format_eval, format_round
from salad_core.errors import InputError, TrainingError


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_train_args(parser: argparse.ArgumentParser) -> None:
    from salad_core.flags import add_dataclass_flags
    from salad_core.train.config import CHOICES, PRESET_RECIPES, TrainConfig

    add_dataclass_flags(parser, TrainConfig, PRESET_RECIPES, CHOICES)
    parser.add_argument("--resume", metavar="RUN_ID", help="continue a run from its last checkpoint")
    parser.add_argument("--no-final-eval", dest="final_eval", action="store_false",
                        help="skip the closing `salad eval` of the final model")


def train_config(args: argparse.Namespace):
    """The TrainConfig of `salad train` flags: the preset's recipe, with every flag given on top."""
    from dataclasses import fields

    from salad_core.train.config import TrainConfig

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "preset"}
    return TrainConfig.for_preset(args.preset or "mini", **given)


def stage2_config(args: argparse.Namespace, store):
    """Stage II: the named Stage I run's options with the Stage II schedule, on the round given (default: the
    newest finished round selected from that run), with every flag given on top."""
    from dataclasses import fields

    from salad_core.train.config import TrainConfig
    from salad_core.train.stage2 import latest_round, stage2_of

    if not args.from_run:
        raise InputError("--stage 2 needs --from RUN, the Stage I run to continue. Fix: add --from train-….")
    saved = store.runs("train").set_index("run_id")
    if args.from_run not in saved.index:
        raise InputError(f"no training run {args.from_run!r} in {store.path}. Fix: name a finished Stage I run.")
    round_id = args.round_id or latest_round(store, args.from_run)
    skip = {"preset", "stage", "from_run", "round_id"}
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in skip}
    return stage2_of(store, args.from_run, round_id, **given)


def cmd_train(args: argparse.Namespace) -> dict | None:
    from salad_core.store import Store
    from salad_core.train.config import TrainConfig

    store = Store(args.db)
    if args.resume:
        saved = store.runs("train").set_index("run_id")
        if args.resume not in saved.index:
            raise InputError(f"no training run {args.resume!r} in {store.path}. Fix: pick one from `salad runs`.")
        config = TrainConfig.from_dict(saved.loc[args.resume, "config"])
    elif args.stage == 2:
        config = stage2_config(args, store)
    else:
        config = train_config(args)
    return train_and_evaluate(config, store, args.resume, args.final_eval, args.json)


def train_and_evaluate(config, store, resume: str | None, evaluate: bool, quiet: bool) -> dict | None:
    """Train (or resume), then `salad eval` the final model unless told not to; the summary `--json` prints."""
    from salad_core.train.evaluate import final_evaluation
    from salad_core.train.machine import every_core_while_others_wait
    from salad_core.eval.vocabulary import DIVERGENCES
    from salad_core.train.trainer import DistillTrainer

    summary = DistillTrainer(config, store, resume=resume).train()
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch`, one process reports
        return None
    if evaluate:
        with every_core_while_others_wait():
            summary["eval"] = final_evaluation(summary["run_dir"], config, store)
        summary.update({k: summary["eval"][k] for k in DIVERGENCES})  # the final model's, on every test item
    if not quiet:
        warmup = f" (and {summary['ctc_targets']} CTC targets)" if summary["ctc_targets"] else ""
        print(f"run {summary['run_id']}: {summary['steps']} steps, {summary['tokens']} text tokens{warmup}, "
              f"{summary['speech_hours']:.2f} h of speech, {summary['wall_s']:.0f} s")
        if "eval" in summary:
            print(format_eval(summary["eval"]))
    return summary


def add_sweep_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--alphas", type=lambda v: [float(x) for x in _csv(v)], default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--budgets-hours", dest="budgets_hours", type=lambda v: [float(x) for x in _csv(v)],
                        default=[None], help="hours of natural speech each run hears, repeats counted; one run per α "
                        "and budget (default: the preset recipe's steps)")
    parser.add_argument("--seeds", type=lambda v: [int(x) for x in _csv(v)], default=[0],
                        help="seeds: one run per α, budget and seed (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, the CPU cores split between them")
    parser.add_argument("--tag", default=None, help="the grid's name in the store (default: sweep-<time>)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="further `salad train` flags, after --")


def cmd_sweep(args: argparse.Namespace) -> dict:
    """A grid of Stage I runs over alpha x speech budget, one `salad train` process each, tagged with one sweep id."""
    from salad_core.train.sweep import run_sweep

    extra = [a for a in args.train_args if a != "--"]
    result = run_sweep(args.preset, args.alphas, args.budgets_hours, extra, args.db, args.jobs, args.tag, args.seeds)
    if not args.json:
        for r in result["runs"]:
            budget = "recipe" if r["budget_hours"] is None else f"{r['budget_hours']:g} h"
            print(f"alpha={r['alpha']:<5g} {budget:>8} seed {r['seed']}  {r.get('run_id') or r['error']}")
    return result


def add_select_args(parser: argparse.ArgumentParser) -> None:
    from salad_core.flags import add_dataclass_flags
    from salad_core.select.config import SelectConfig

    add_dataclass_flags(parser, SelectConfig)
    parser.add_argument("--resume", metavar="ROUND_ID", help="finish an interrupted round from its finished stages, "
                        "with the config it was started with")
    parser.add_argument("--train", action="store_true", help="then train Stage II on the round (salad train "
                        "--stage 2 --from RUN --round ROUND, with its final evaluation): one round, end to end")


def cmd_select(args: argparse.Namespace) -> dict:
    from dataclasses import fields

    from salad_core.select.config import SelectConfig
    from salad_core.select.round import resume_round, run_round
    from salad_core.store import Store

    store = Store(args.db)
    if args.resume:
        result = resume_round(args.resume, store)
    else:
        if not args.from_run:
            raise InputError("salad select needs --from RUN, the trained model that scores the clusters (or "
                             "--resume ROUND_ID, an interrupted round).")
        config = SelectConfig(**{f.name: getattr(args, f.name) for f in fields(SelectConfig)
                                 if getattr(args, f.name) is not None})
        result = run_round(config, store)
    if not args.json:
        print(format_round(result))
    if args.train:
        result["stage2"] = train_stage2_process(result["from_run"], result["round_id"], args.db)
    return result


def train_stage2_process(from_run: str, round_id: str, db: str | None) -> dict:
    """Stage II on a round in a process of its own (`salad train --stage 2 … --json`; its progress on stderr).

    Trained inside the selection's process, every step ran about 8 times slower (160 mini steps in 1,000 s against
    123 s under the same load; docs/results/engineering.md): whatever the selection's models leave behind in a process stays
    out of training.
    """
    import subprocess

    from salad_core.jobs import cli_command

    cmd = cli_command(["train", "--stage", "2", "--from", from_run, "--round", round_id, "--json"], db)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise TrainingError(f"Stage II on round {round_id} failed (exit code {done.returncode}; its log is above). "
                           f"The round is kept. Fix the cause, then rerun: salad {' '.join(cmd[3:])}")
    return json.loads(done.stdout)


def add_speech_args(parser: argparse.ArgumentParser) -> None:
    from salad_core.flags import add_list_flag, field_comments
    from salad_core.presets import PRESETS
    from salad_core.train.config import TrainConfig

    about = field_comments(TrainConfig)
    parser.add_argument("action", choices=("check",), help="check: what the sources hold as training would read them "
                        "(documents, utterances, hours, what is dropped and why, rows that cannot be read) and the "
                        "leak audit against the preset's evaluation tasks")
    add_list_flag(parser, "--speech", f"{about['speech']} (as `salad train --speech`; repeatable)", required=True)
    add_list_flag(parser, "--speech-columns", about["speech_columns"])
    parser.add_argument("--preset", default="mini", choices=sorted(PRESETS),
                        help="the preset whose evaluation tasks the sources are audited against (default: mini)")
    parser.add_argument("--limit", type=int, metavar="N", help="read only the first N utterances of each source")


def cmd_speech(args: argparse.Namespace) -> dict:
    """`salad speech check`: the sources' statistics and leak audit (salad_core/train/speech_check.py)."""
    from salad_core.progress import Progress
    from salad_core.train.speech_check import check_lines, check_speech
    from salad_core.train.stream_batches import speech_sources
    from salad_core.world import preset_world

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit {args.limit}: read at least one utterance of each source. Fix: --limit 1 or "
                         "more, or leave it out to read every utterance.")
    sources = speech_sources(args.speech, args.speech_columns)
    with Progress(None, f"the evaluation facts of {args.preset} (its world is built if it is not)") as progress:
        world = preset_world(args.preset, lm=False, progress=not args.json)
        result = check_speech(sources, world, limit=args.limit, progress=progress)
    result["preset"] = args.preset
    if not args.json:
        print("\n".join(check_lines(result)))
    return result
