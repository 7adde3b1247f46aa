"""The `salad` command: thin recipes over the library, one table of subcommands.

    salad eval [--preset smol] [--tasks capitals,elements] [--limit N] [--manifest FILE] [--db PATH] [--json]
    salad eval --voices flite:slt,espeak:en-us@1.2,flite:slt+noise10,recorded   the gap per voice condition
    salad world build|info --preset mini|nano      the mini world: text, tasks, speech, cached encoder frames
    salad train --preset mini --alpha 1.0 [...]    Stage I distillation (see `salad train --help`)
    salad sweep --alphas 0,1 --seeds 0,1,2 --jobs 2 [--budgets-hours 10,20] [-- train flags]
    salad select --from RUN --gamma 5 --budget 10%  Stage II active selection of synthetic speech
    salad train --stage 2 --from RUN [--round ID]  Stage II: continue RUN on natural + selected speech
    salad tasks [--json]          the spoken task suite buildable here
    salad voices [--json]         TTS engines and their voices

With --json, stdout carries exactly one JSON object; progress bars and logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_eval_args(parser: argparse.ArgumentParser) -> None:
    from salad_core.eval.vocabulary import K_SHOT, LANES, SCORINGS
    from salad_core.presets import PRESETS

    model = parser.add_argument_group("model (default: the offline preset 'smol')")
    model.add_argument("--preset", default="smol", choices=sorted(PRESETS))
    model.add_argument("--model", dest="model_path", help="a saved SaladModel folder (overrides --preset)")
    model.add_argument("--llm", help="LLM hub id, alias or local folder (overrides the preset's)")
    model.add_argument("--encoder", help="Whisper-family encoder hub id, alias or local folder")
    data = parser.add_argument_group("data")
    data.add_argument("--tasks", type=_csv, help="comma-separated task names (default: all available)")
    data.add_argument("--limit", type=int, help="items per task")
    data.add_argument("--split", choices=("dev", "test"), help="the split scored (default test; dev while choosing)")
    data.add_argument("--manifest", help="JSONL file of your own spoken items (see docs/manifest.md)")
    data.add_argument("--voice", help="TTS voice for questions: engine:voice[@speed] (default flite:slt@1); "
                      "'world': mini-world tasks as the world spoke them (held-out voices, cached frames)")
    data.add_argument("--voices", type=_csv, metavar="CONDITION[,CONDITION...]",
                      help="a sweep: hear every question in each condition, engine:voice[@speed][+noise<SNR dB>] or "
                      "'recorded' (the manifest's recordings); text lanes are scored once, the gap per condition. "
                      "The first condition is the run's reference voice.")
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument("--k-shot", dest="k_shot", type=int, default=K_SHOT)
    scoring.add_argument("--scoring", default="acc_norm", choices=SCORINGS)
    scoring.add_argument("--asr", default="whisper-base", help="the cascade's ASR model")
    scoring.add_argument("--asr-beam", dest="asr_beam", type=int, default=1, help="ASR beam size (1 = greedy)")
    scoring.add_argument("--probe-limit", dest="probe_limit", type=int, default=10,
                         help="dev items per task for item_F and item_M (the question heard, the answer read)")
    scoring.add_argument("--no-corpus", dest="corpus", action="store_false", default=None,
                         help="skip corpus F and M (on the model's held-out probe documents: the world's, or broad text)")
    scoring.add_argument("--seed", type=int, default=0)
    scoring.add_argument("--lanes", type=_csv, default=list(LANES),
                         help=f"comma-separated lanes to score (default: {','.join(LANES)})")


def cmd_eval(args: argparse.Namespace) -> dict:
    from salad_core.eval.runner import EvalConfig, run_eval
    from salad_core.store import Store

    fields = {k: getattr(args, k) for k in EvalConfig.__dataclass_fields__ if getattr(args, k, None) is not None}
    if args.manifest and args.tasks is None:
        fields["tasks"] = []  # a manifest alone evaluates just the manifest
    result = run_eval(EvalConfig(**fields), Store(args.db))
    if not args.json:
        print(format_eval(result))
    return result


def format_eval(result: dict) -> str:
    cols = ("n", "text_acc_base", "text_acc", "speech_acc", "cascade_acc", "cascade_wer", "gap", "forgetting", "misalignment")
    lines = [f"run {result['run_id']}  (scoring: {result['scoring']}, {result['k_shot']}-shot, voice {result['voice']})",
             f"{'task':<14}" + "".join(f"{c:>14}" for c in cols)]
    for task, row in result["tasks"].items():
        cells = "".join(f"{'-' if row[c] is None else format(row[c], '.3f') if c != 'n' else row[c]:>14}" for c in cols)
        lines.append(f"{task:<14}{cells}")
    lines.append(f"corpus F = {_fmt(result['F'])}, M = {_fmt(result['M'])} nats/token (held-out documents); "
                 f"item_F = {_fmt(result['item_F'])}, item_M = {_fmt(result['item_M'])} (the tasks' dev items)")
    for domain, row in result.get("corpus", {}).items():
        if domain != "__all__":
            lines.append(f"  {domain:<14} F {_fmt(row['F'])}  M {_fmt(row['M'])}  ({row['m_tokens']} text positions)")
    if result.get("conditions"):
        lines.append(f"{'voice condition':<28}{'task':<14}{'n':>5}{'speech_acc':>12}{'gap':>9}  gap 95 % CI")
        for entry in result["conditions"]:
            for task, row in entry["tasks"].items():
                low, high = row["ci"].get("gap", [None, None])
                lines.append(f"{entry['condition']:<28}{task:<14}{row['n']:>5}{_fmt(row['speech_acc']):>12}"
                             f"{_fmt(row['gap']):>9}  [{_fmt(low)}, {_fmt(high)}]")
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


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

    if not args.from_run:
        raise ValueError("--stage 2 needs --from RUN, the Stage I run to continue. Fix: add --from train-….")
    saved = store.runs("train").set_index("run_id")
    if args.from_run not in saved.index:
        raise ValueError(f"no training run {args.from_run!r} in {store.path}. Fix: name a finished Stage I run.")
    round_id = args.round_id or latest_round(store, args.from_run)
    skip = {"preset", "stage", "from_run", "round_id"}
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in skip}
    return stage2_of(store, args.from_run, round_id, **given)


def stage2_of(store, from_run: str, round_id: str, **options):
    """Stage II always continues the lineage's Stage I run from its pre-decay checkpoint (a later round adds its
    speech to the earlier rounds'), so `from_run` may be a Stage I or a Stage II run."""
    from salad_core.select.round import stage1_root
    from salad_core.train.config import TrainConfig

    root = stage1_root(store, from_run)
    stage1 = TrainConfig.from_dict(store.runs("train").set_index("run_id").loc[root, "config"])
    return TrainConfig.stage2(stage1, root, round_id, **options)


def latest_round(store, from_run: str) -> str:
    rounds = store.runs("select")
    mine = [r for r, status, c in zip(rounds["run_id"], rounds["status"], rounds["config"])
            if status == "done" and isinstance(c, dict) and c.get("from_run") == from_run]
    if not mine:
        raise ValueError(f"no finished selection round was made from {from_run}. Fix: run "
                         f"`salad select --from {from_run}` first, or name one with --round.")
    return mine[0]  # runs() lists newest first


def cmd_train(args: argparse.Namespace) -> dict | None:
    from salad_core.store import Store
    from salad_core.train.config import TrainConfig

    store = Store(args.db)
    if args.resume:
        saved = store.runs("train").set_index("run_id")
        if args.resume not in saved.index:
            raise ValueError(f"no training run {args.resume!r} in {store.path}. Fix: pick one from `salad runs`.")
        config = TrainConfig.from_dict(saved.loc[args.resume, "config"])
    elif args.stage == 2:
        config = stage2_config(args, store)
    else:
        config = train_config(args)
    return train_and_evaluate(config, store, args.resume, args.final_eval, args.json)


def train_and_evaluate(config, store, resume: str | None, evaluate: bool, quiet: bool) -> dict | None:
    """Train (or resume), then `salad eval` the final model unless told not to; the summary `--json` prints."""
    from salad_core.train.trainer import DIVERGENCE_KEYS, DistillTrainer, every_core_while_others_wait

    summary = DistillTrainer(config, store, resume=resume).train()
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch`, one process reports
        return None
    if evaluate:
        with every_core_while_others_wait():
            summary["eval"] = final_eval(summary, config, store)
        summary.update({k: summary["eval"][k] for k in DIVERGENCE_KEYS})  # the final model's, on every test item
    if not quiet:
        print(f"run {summary['run_id']}: {summary['steps']} steps, {summary['tokens']} text tokens, "
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


def final_eval(summary: dict, config, store) -> dict:
    """`salad eval` of the final model on every item of the run's `final_split` (test, or dev while a recipe is
    chosen) of the world's tasks, each question as the world spoke it (held-out voices, cached frames). The ASR
    cascade is left out here: `salad eval --voice world` adds it."""
    from salad_core.eval.runner import EvalConfig, run_eval
    from salad_core.eval.vocabulary import WORLD_VOICE
    from salad_core.world import preset_world

    world = preset_world(config.preset)
    tasks = [d.task for d in world.domains]
    eval_config = EvalConfig(preset=config.preset, model_path=str(summary["run_dir"]) + "/final", tasks=tasks,
                             voice=WORLD_VOICE, seed=config.seed, lanes=["base_text", "text", "speech"],
                             split=config.final_split)
    return run_eval(eval_config, store)


def cmd_tasks(args: argparse.Namespace) -> list[dict]:
    from salad_core.tasks import available_tasks, get_task

    rows = []
    for name in available_tasks():
        task = get_task(name)
        rows.append({"task": name, "version": task.version, "domain": task.spec.domain, "source": task.spec.source,
                     **{split: len(task.items(split)) for split in ("dev", "test", "fewshot")},
                     "description": task.spec.description})
    if not args.json:
        for r in rows:
            print(f"{r['task']:<12} v{r['version']:<5} {r['domain']:<11} test {r['test']:>4}  dev {r['dev']:>4}  {r['description']}")
    return rows


def cmd_voices(args: argparse.Namespace) -> dict:
    from salad_core.tts import list_engines, list_voices

    voices = {engine: list_voices(engine) for engine in list_engines()}
    if not args.json:
        for engine, names in voices.items():
            print(f"{engine:<8} {len(names):>4} voices: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}")
    return voices


def add_world_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "info", "audit", "export"),
                        help="build the world (cached), describe it, audit its training speech for eval facts, or "
                        "export its eval items, training speech and selection pool as JSONL")
    parser.add_argument("--preset", default="mini", choices=("mini", "nano"), help="world size (nano: tests)")
    parser.add_argument("--force", action="store_true", help="rebuild even if this world is already built")
    parser.add_argument("--no-lm", dest="lm", action="store_false",
                        help="skip pretraining the world's LM beside the speech (it is then trained on first use)")
    parser.add_argument("--out", help="export: the folder to write eval_items.jsonl, speech_train.jsonl and "
                        "selection_pool.jsonl into")


def cmd_world(args: argparse.Namespace) -> dict:
    from salad_core.world import build_world, load_world

    if args.action == "build":
        world = build_world(args.preset, force=args.force, progress=not args.json, lm=args.lm)
    else:
        world = load_world(args.preset)
    if args.action == "audit":
        from salad_core.world.audit import format_table

        rows = world.audit()
        if not args.json:
            print(f"eval facts of world {world.name} stated in each training source (0 everywhere: no leak)")
            print(format_table(rows))
        return {"world": world.name, "audit": rows}
    if args.action == "export":
        if not args.out:
            raise ValueError("salad world export needs --out DIR, the folder to write the JSONL files into.")
        written = world.export(args.out)
        if not args.json:
            print("\n".join(f"{args.out}/{name}: {n} lines" for name, n in written.items()))
        return {"world": world.name, "out": args.out, "files": written}
    info = world.info()
    if not args.json:
        print(f"world {info['name']} at {info['root']}: {info['speech_hours']:.2f} h of natural speech, "
              f"{info['n_clips']} clips, vocabulary {info['vocabulary_size']}")
        for d in info["domains"]:
            covered = "speech+text" if d["in_natural_speech"] else "text only"
            print(f"  {d['task']:<18} {d['kind']:<6} {covered:<12} test {d['n_test']:>4}  dev {d['n_dev']:>4}")
    return info


def add_select_args(parser: argparse.ArgumentParser) -> None:
    from salad_core.flags import add_dataclass_flags
    from salad_core.select.config import SelectConfig

    add_dataclass_flags(parser, SelectConfig)
    parser.add_argument("--train", action="store_true", help="then train Stage II on the round (salad train "
                        "--stage 2 --from RUN --round ROUND, with its final evaluation): one round, end to end")


def cmd_select(args: argparse.Namespace) -> dict:
    from dataclasses import fields

    from salad_core.select.config import SelectConfig
    from salad_core.select.round import run_round
    from salad_core.store import Store

    if not args.from_run:
        raise ValueError("salad select needs --from RUN, the trained model that scores the clusters.")
    config = SelectConfig(**{f.name: getattr(args, f.name) for f in fields(SelectConfig)
                             if getattr(args, f.name) is not None})
    store = Store(args.db)
    result = run_round(config, store)
    if not args.json:
        print(format_round(result))
    if args.train:
        result["stage2"] = train_stage2_process(config.from_run, result["round_id"], args.db)
    return result


def train_stage2_process(from_run: str, round_id: str, db: str | None) -> dict:
    """Stage II on a round in a process of its own (`salad train --stage 2 … --json`; its progress on stderr).

    Trained inside the selection's process, every step ran about 8 times slower (160 mini steps in 1,000 s against
    123 s under the same load; README, Stage II): whatever the selection's models leave behind in a process stays
    out of training.
    """
    import subprocess

    from salad_core.jobs import cli_command

    cmd = cli_command(["train", "--stage", "2", "--from", from_run, "--round", round_id, "--json"], db)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"Stage II on round {round_id} failed (exit code {done.returncode}; its log is above). "
                           f"The round is kept. Fix the cause, then rerun: salad {' '.join(cmd[3:])}")
    return json.loads(done.stdout)


def format_round(result: dict) -> str:
    lines = [f"round {result['round_id']} from {result['from_run']}: {result['strategy']}, γ = {result['gamma']:g}, "
             f"{result['selected_hours'] * 60:.1f} of {result['budget_hours'] * 60:.1f} min selected "
             f"({result['n_selected']} documents)",
             f"{'cluster':>7} {'domain':<12} {'size':>6} {'P_web':>7} {'M':>7} {'CER':>6} {'P_target':>9} {'picked':>7}"]
    for c in sorted(result["clusters"], key=lambda c: -(c["m"] or 0)):
        flag = " filtered" if c["filtered"] else ""
        lines.append(f"{c['id']:>7} {str(c['domain']):<12} {c['size']:>6} {c['p_web']:>7.3f} {_fmt(c['m']):>7} "
                     f"{_fmt(c['cer']):>6} {c['p_target']:>9.3f} {c['n_selected']:>7}{flag}")
    return "\n".join(lines)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], object], str, Callable | None]] = {
    "eval": (cmd_eval, "text-speech gap per task: every lane on every item, with confidence intervals", add_eval_args),
    "train": (cmd_train, "Stage I: cross-modal distillation from the original LLM (SALAD)", add_train_args),
    "sweep": (cmd_sweep, "a grid of Stage I runs over alpha and speech budget", add_sweep_args),
    "select": (cmd_select, "Stage II: score clusters of the text corpus and select synthetic speech where the "
               "model is most misaligned", add_select_args),
    "tasks": (cmd_tasks, "list the spoken task suite", None),
    "voices": (cmd_voices, "list TTS engines and voices", None),
    "world": (cmd_world, "build or describe the mini world (text, MC tasks, synthetic speech)", add_world_args),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salad", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text, add_args) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout (logs go to stderr)")
        p.add_argument("--db", help="results store (default: data/salad.duckdb)")
        if add_args:
            add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    import salad_core.world  # noqa: F401  (registers the mini worlds' tasks, LLM names and probe documents)

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    from salad_core.assets import AssetError

    try:
        with _stdout_to_stderr(args.json):
            result = COMMANDS[args.command][0](args)
    except (AssetError, KeyError, ValueError, FileNotFoundError) as err:
        print(f"salad {args.command}: error: {err}", file=sys.stderr)
        return 2
    if args.json and result is not None:
        print(json.dumps(result, default=str))
    return 0


@contextlib.contextmanager
def _stdout_to_stderr(active: bool) -> Iterator[None]:
    """With --json, anything a library prints (even from C code) goes to stderr; only our JSON reaches stdout."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


if __name__ == "__main__":
    sys.exit(main())
