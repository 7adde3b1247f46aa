"""What a trained model's adapter hears: the words its CTC aid spells out of the spoken questions, per domain.

For each world domain, on the questions of one split in the held-out evaluation voices: the share of questions whose
subject (the country, the animal, the element, the operands; world/domains.py) is spelled out exactly, and the word
and character error rates of the questions (a subword model's near misses, "elbania" for "albania", count as one
wrong word but one wrong character). For comparison, the same subjects where the natural speech says them in the
training voices (other relations of the same entities: "algeria is in northern africa"): the share of their words
spelled out there. A subject heard in training voices but not in the held-out ones is a voice that did not
generalize; one heard in neither is a word the adapter never learnt.

    python benchmarks/recognition.py --model train-20261202-070910-353e            # a run id of this data folder
    python benchmarks/recognition.py --model data/runs/<run>/final --split test --limit 0

Needs a model trained with the CTC aid (`--align ctc` or `ctc-soft`, the mini recipe).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def spelled(subject: list[str], heard: str) -> bool:
    """Every word of every subject phrase is among the words heard."""
    words = set(heard.split())
    return all(w in words for phrase in subject for w in phrase.split())


def held_out(model, world, split: str, limit: int) -> list[dict]:
    from salad_core.asr import char_error_rate, word_error_rate

    subjects = {f["key"]: f["subject"] for facts in world.eval_facts().values() for f in facts}
    rows = []
    for domain in world.domains:
        items = [i for i in world.task_items(domain.name, split) if i.doc_id in subjects]
        items = items[:limit] if limit else items
        heard = model.heard_words(world.features([world.eval_clip(i.item_id) for i in items], model.encoder))
        questions = [i.question for i in items]
        rows.append({"domain": domain.name, "items": len(items),
                     "subject_heard": sum(spelled(subjects[i.doc_id], h) for i, h in zip(items, heard)) / len(items),
                     "wer": word_error_rate(questions, heard), "cer": char_error_rate(questions, heard),
                     "examples": [(i.question, h) for i, h in list(zip(items, heard))[:3]]})
    return rows


def training_voices(model, world, limit: int) -> dict[str, float]:
    """Per covered domain: share of eval-fact subject words spelled out in training speech spans that say them."""
    words_of = {task.removeprefix("mini-").removeprefix("nano-"): {w for f in facts for p in f["subject"]
                                                                   for w in p.split()}
                for task, facts in world.eval_facts().items()}
    out = {}
    for domain in sorted(world.covered_domains):
        spans = [s for d in world.speech_docs() if d.domain == domain for s in d.spans
                 if s.clip_id and words_of.get(domain, set()) & set(s.text.split())][:limit or None]
        if not spans:
            continue
        heard = model.heard_words(world.features([s.clip_id for s in spans], model.encoder))
        hits = total = 0
        for span, h in zip(spans, heard):
            said = [w for w in span.text.split() if w in words_of[domain]]
            hits += sum(w in set(h.split()) for w in said)
            total += len(said)
        out[domain] = hits / total
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a training run id of this data folder, or a model folder")
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--limit", type=int, default=60, help="questions (and training spans) per domain; 0: all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import salad_core.world  # noqa: F401  (registers the world LLM names)
    from salad_core.model.modeling import SaladModel
    from salad_core.model.names import parse_llm_name
    from salad_core.runs import RunDir
    from salad_core.world import preset_world

    folder = Path(args.model) if Path(args.model).exists() else RunDir(args.model).final
    model = SaladModel.from_pretrained(folder).eval()
    llm = parse_llm_name(model.config.llm_name)
    if not llm.is_world:
        raise SystemExit(f"{folder} was not trained on a mini world (its LLM is {llm.text}); this script reads one.")
    world = preset_world(llm.world)
    rows = held_out(model, world, args.split, args.limit)
    trained = training_voices(model, world, args.limit)
    if args.json:
        print(json.dumps({"model": str(folder), "split": args.split, "held_out": rows, "training_voices": trained}))
        return
    print(f"model {folder}, {args.split} questions in held-out voices; training voices: natural-speech spans")
    print(f"{'domain':<12}{'items':>6}{'subject heard':>15}{'WER':>7}{'CER':>7}{'subject, training voices':>26}")
    for r in rows:
        seen = trained.get(r["domain"])
        print(f"{r['domain']:<12}{r['items']:>6}{r['subject_heard']:>15.2f}{r['wer']:>7.2f}{r['cer']:>7.2f}"
              f"{'-' if seen is None else format(seen, '.2f'):>26}")
    for r in rows:
        for question, heard in r["examples"][:1]:
            print(f"  {r['domain']}: {question!r} -> {heard!r}")


if __name__ == "__main__":
    main()
