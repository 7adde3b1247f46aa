"""The `salad` command: thin recipes over the library, one table of subcommands.

    salad eval [--preset smol] [--tasks capitals,elements] [--limit N] [--manifest FILE] [--db PATH] [--json]
    salad eval --voices flite:slt,espeak:en-us@1.2,flite:slt+noise10,recorded   the gap per voice condition
    salad world build|info|audit --corpus mini|nano|broad   a mini world, or the smol preset's broad speech corpus
    salad train --preset mini --alpha 1.0 [...]    Stage I distillation (see `salad train --help`)
    salad speech check --speech SOURCE[:W] [--speech ...] [--preset mini] [--limit N]   a corpus as training reads it
    salad sweep --alphas 0,1 --seeds 0,1,2 --jobs 2 [--budgets-hours 10,20] [-- train flags]
    salad select --from RUN --gamma 5 --budget 10%  Stage II active selection of synthetic speech
    salad train --stage 2 --from RUN [--round ID]  Stage II: continue RUN on natural + selected speech
    salad runs [--kind train] [show RUN]   the store's runs; one with its config, lineage and headline metrics
    salad ship RUN --eval EVAL_RUN         a trained model as its preset's shipped adapter, with its model card
    salad tasks [--json]          the spoken task suite buildable here
    salad voices [--json]         TTS engines and their voices

With --json, stdout carries exactly one JSON object; progress bars and logs go to stderr.
A mistake the user can fix (salad_core.errors: a bad flag value, an unknown run, a missing asset, a busy store)
prints one line, `salad <command>: error: ...`, and exits with code 2; any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from salad_core.cli_training import (
    add_select_args,
    add_speech_args,
    add_sweep_args,
    add_train_args,
    cmd_select,
    cmd_speech,
    cmd_sweep,
    cmd_train,
)
from salad_core.console import format_eval, run_summary
from salad_core.errors import InputError, SaladError


def add_eval_args(parser: argparse.ArgumentParser) -> None:
    from salad_core.eval.config import CHOICES, EvalConfig
    from salad_core.flags import add_dataclass_flags

    add_dataclass_flags(parser, EvalConfig, choices=CHOICES)


def cmd_eval(args: argparse.Namespace) -> dict:
    from salad_core.eval.config import EvalConfig
    from salad_core.eval.runner import run_eval
    from salad_core.store import Store

    fields = {k: getattr(args, k) for k in EvalConfig.__dataclass_fields__ if getattr(args, k, None) is not None}
    if (args.manifest or args.dataset) and args.tasks is None:
        fields["tasks"] = []  # a manifest or a dataset alone evaluates just that
    result = run_eval(EvalConfig(**fields), Store(args.db))
    if not args.json:
        print(format_eval(result))
    return result


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


def add_runs_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("list", "show"), default="list",
                        help="list the runs (default), or show one with its config, lineage and headline metrics")
    parser.add_argument("run_id", nargs="?", help="show: the run")
    parser.add_argument("--kind", choices=("train", "eval", "select"), help="list: only runs of this kind")


def cmd_runs(args: argparse.Namespace) -> dict | list:
    from salad_core.compare import final_eval_run
    from salad_core.eval.vocabulary import ALL_TASKS, HEADLINE_METRICS
    from salad_core.runs import Lineage, shown_status
    from salad_core.store import Store

    store = Store(args.db)
    runs = store.runs(args.kind)
    if args.action == "list":
        rows = [{"run_id": r["run_id"], "kind": r["kind"], "status": shown_status(r["kind"], r["run_id"], r["status"]),
                 "created_at": str(r["created_at"]),
                 "summary": run_summary(r["kind"], r["config"] or {}), "parent_run": r["parent_run"]}
                for _, r in runs.iterrows()]
        if not args.json:
            for r in rows:
                print(f"{r['run_id']:<28} {r['status']:<11} {r['summary']}")
        return rows
    if not args.run_id or args.run_id not in set(store.runs()["run_id"]):
        raise InputError(f"no run {args.run_id!r} in {store.path}. Fix: pick one from `salad runs`.")
    run = store.runs().set_index("run_id").loc[args.run_id]
    scored = final_eval_run(store, args.run_id) if run["kind"] == "train" else args.run_id
    metrics = store.metrics(scored) if scored and run["kind"] != "select" else None
    headline = {} if metrics is None else {
        m: float(v) for m, v in metrics[(metrics["task"] == ALL_TASKS) & metrics["step"].isna()].set_index("metric")
        ["value"].items() if m in HEADLINE_METRICS}
    status = shown_status(run["kind"], args.run_id, run["status"])
    shown = {"run_id": args.run_id, "kind": run["kind"], "status": status, "error": run["error"],
             "created_at": str(run["created_at"]), "lineage": Lineage.of(store).chain(args.run_id),
             "final_eval": scored if run["kind"] == "train" else None, "metrics": headline, "config": run["config"],
             "plan": run["plan"], "notes": run["notes"] or []}
    if not args.json:
        print(f"{args.run_id}: {run['kind']} run, {status}; {run_summary(run['kind'], run['config'] or {})}")
        print("lineage: " + " <- ".join(shown["lineage"]))
        for name, value in headline.items():
            print(f"  {name:<14} {value:.3f}")
        for note in shown["notes"]:
            print(f"note: {note}")
        print(json.dumps({"config": run["config"], "plan": run["plan"]}, indent=1, default=str))
    return shown


def add_world_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "info", "audit", "export"),
                        help="build the world (cached), describe it, audit its training speech for eval facts, or "
                        "export its eval items, training speech and selection pool as JSONL")
    parser.add_argument("--corpus", choices=CORPORA, help="mini (default) or nano (tests): a mini world; broad: the "
                        "smol preset's training speech (broad English, audited against every item of the built-in tasks)")
    parser.add_argument("--preset", choices=CORPORA, help=argparse.SUPPRESS)  # the old name of --corpus, for one release
    parser.add_argument("--force", action="store_true", help="rebuild even if this world is already built")
    parser.add_argument("--no-lm", dest="lm", action="store_false",
                        help="skip pretraining the world's LM beside the speech (it is then trained on first use)")
    parser.add_argument("--out", help="export: the folder to write eval_items.jsonl, speech_train.jsonl and "
                        "selection_pool.jsonl into")
    parser.add_argument("--speech-dataset", action="store_true",
                        help="export: also the natural speech as a `datasets` folder, OUT/speech (one row per "
                        "utterance: audio, text, doc, pos), which `salad train --speech hf:OUT/speech` reads")


CORPORA = ("mini", "nano", "broad")


def world_corpus(args: argparse.Namespace) -> str:
    """`--corpus`, or the deprecated `--preset` it replaced (a preset names a model set-up in `train` and `eval`)."""
    if args.preset and args.corpus and args.preset != args.corpus:
        raise InputError(f"--preset {args.preset} and --corpus {args.corpus} disagree. Fix: pass --corpus alone.")
    if args.preset:
        print(f"salad world: --preset is deprecated and will be removed; use --corpus {args.preset}", file=sys.stderr)
    return args.corpus or args.preset or "mini"


def cmd_world(args: argparse.Namespace) -> dict:
    from salad_core.world import build_world, load_world

    args.corpus = world_corpus(args)
    if args.corpus == "broad":
        return _broad_corpus(args)
    if args.action == "build":
        world = build_world(args.corpus, force=args.force, progress=not args.json, lm=args.lm)
    else:
        world = load_world(args.corpus)
    if args.action == "audit":
        from salad_core.world.audit import format_table

        rows = world.audit()
        if not args.json:
            print(f"eval facts of world {world.name} stated in each training source (0 everywhere: no leak)")
            print(format_table(rows))
        return {"world": world.name, "audit": rows}
    if args.action == "export":
        if not args.out:
            raise InputError("salad world export needs --out DIR, the folder to write the JSONL files into.")
        written = world.export(args.out)
        if args.speech_dataset:
            from salad_core.world.speech_export import export_speech_dataset

            written["speech"] = export_speech_dataset(world, Path(args.out) / "speech", progress=not args.json)
        if not args.json:
            print("\n".join(f"{args.out}/{name}: {n} {'utterances' if name == 'speech' else 'lines'}"
                            for name, n in written.items()))
        return {"world": world.name, "out": args.out, "files": written}
    info = world.info()
    if not args.json:
        print(f"world {info['name']} at {info['root']}: {info['speech_hours']:.2f} h of natural speech, "
              f"{info['n_clips']} clips, vocabulary {info['vocabulary_size']}")
        for d in info["domains"]:
            covered = "speech+text" if d["in_natural_speech"] else "text only"
            print(f"  {d['task']:<18} {d['kind']:<6} {covered:<12} test {d['n_test']:>4}  dev {d['n_dev']:>4}")
    return info


def _broad_corpus(args: argparse.Namespace) -> dict:
    from salad_core.broad import build_broad, load_broad
    from salad_core.world.audit import format_table

    if args.action == "export" or not args.lm or args.force:
        raise InputError("--corpus broad builds, describes and audits the broad speech corpus; export, --no-lm and "
                         "--force are for the mini worlds (delete its folder to rebuild it).")
    corpus = build_broad(progress=not args.json) if args.action == "build" else load_broad()
    if args.action == "audit":
        rows = corpus.audit()
        if not args.json:
            print("facts of the built-in tasks' items stated in the broad corpus's speech (0 everywhere: no leak)")
            print(format_table(rows))
        return {"world": "broad", "audit": rows}
    info = corpus.info()
    if not args.json:
        print(f"broad speech corpus at {info['root']}: {info['speech_hours']:.2f} h in {info['n_speech_docs']} "
              f"documents, {info['n_train_clips']} clips, {len(info['train_voices'])} voices; sentences per source "
              + ", ".join(f"{k} {v}" for k, v in info["sources"].items()))
    return info


def add_ship_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="the training run whose final model ships")
    parser.add_argument("--eval", required=True, dest="eval_run",
                        help="the `salad eval` run of that model whose per-task table goes into the model card")
    parser.add_argument("--out", help="the folder to write (default: salad_core/adapters/<the run's preset>)")


def cmd_ship(args: argparse.Namespace) -> dict:
    from salad_core.shipping import ship
    from salad_core.store import Store

    out = ship(args.run, args.eval_run, Store(args.db), args.out)
    if not args.json:
        print(f"wrote {out} (config.json, model.safetensors in float16, README.md: the model card)")
    return {"run": args.run, "eval": args.eval_run, "out": str(out)}


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], object], str, Callable | None]] = {
    "eval": (cmd_eval, "text-speech gap per task: every lane on every item, with confidence intervals", add_eval_args),
    "train": (cmd_train, "Stage I: cross-modal distillation from the original LLM (SALAD)", add_train_args),
    "sweep": (cmd_sweep, "a grid of Stage I runs over alpha and speech budget", add_sweep_args),
    "select": (cmd_select, "Stage II: score clusters of the text corpus and select synthetic speech where the "
               "model is most misaligned", add_select_args),
    "speech": (cmd_speech, "check speech sources before training on them: documents, hours, what is dropped and "
               "why, and the leak audit", add_speech_args),
    "runs": (cmd_runs, "list the store's runs, or show one (config, lineage, headline metrics)", add_runs_args),
    "tasks": (cmd_tasks, "list the spoken task suite", None),
    "voices": (cmd_voices, "list TTS engines and voices", None),
    "world": (cmd_world, "build or describe the mini world (text, MC tasks, synthetic speech)", add_world_args),
    "ship": (cmd_ship, "write a trained model into the package as its preset's shipped adapter, with a model card",
             add_ship_args),
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
    try:
        with _stdout_to_stderr(args.json):
            result = COMMANDS[args.command][0](args)
    except SaladError as err:  # what the user can fix: one line; anything else is a bug and keeps its traceback
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
