"""What a trained model's adapter hears: the words its CTC aid spells out of the spoken questions, per domain.

For each domain, on the questions of one split in the held-out evaluation voice: the share of questions whose
subject (the country, the animal, the element, the operands) is spelled out exactly, and the word and character error
rates of the questions (a subword model's near misses, "elbania" for "albania", count as one wrong word but one wrong
character). For comparison, the same subjects where the training speech says them in the training voices (other
relations of the same entities: "algeria is in northern africa"): the share of their words spelled out there. A
subject heard in training voices but not in the held-out one is a voice that did not generalize; one heard in
neither is a word the adapter never learnt.

A model trained on a mini world is read against that world (its domains, its eval facts' subjects); any other model
trained with the aid (the `smol` preset) against the broad speech corpus: the built-in tasks' spoken dev items, their
subjects as the leak audit defines them (broad/audit.py), and the training spans of any source that say them.

    python benchmarks/recognition.py --model train-20261202-070910-353e            # a run id of this data folder
    python benchmarks/recognition.py --model data/runs/<run>/final --split test --limit 0
    python benchmarks/recognition.py --model salad_core/adapters/smol             # the shipped smol adapter

Needs a model trained with the CTC aid (`--align ctc` or `ctc-soft`, the mini and smol recipes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def spelled(subject: list[str], heard: str) -> bool:
    """Every word of every subject phrase is among the words heard."""
    words = set(heard.split())
    return all(w in words for phrase in subject for w in phrase.split())


class Subjects:
    """The subjects of the questions a corpus is evaluated on, in the audit's text form (broad/audit.py's `text_form`,
    which leaves the mini world's text as it is): per item, and per domain the words of all of them."""

    def __init__(self, corpus):
        from salad_core.broad.corpus import BroadSpeech

        self.broad = isinstance(corpus, BroadSpeech)
        if self.broad:  # the built-in tasks' item facts, keyed by item id
            from salad_core.broad.audit import suite_facts

            facts = suite_facts(corpus.manifest["tasks"])
        else:  # the world's eval facts, keyed by doc id, under task names "mini-<domain>"
            facts = {t.removeprefix("mini-").removeprefix("nano-"): f for t, f in corpus.eval_facts().items()}
        self.by_key = {f["key"]: f["subject"] for task_facts in facts.values() for f in task_facts}
        self.words = {domain: {w for f in task_facts for p in f["subject"] for w in p.split()}
                      for domain, task_facts in facts.items()}

    def of(self, item) -> list[str] | None:
        return self.by_key.get(item.item_id if self.broad else item.doc_id)


def held_out(model, corpus, subjects: Subjects, split: str, limit: int) -> list[dict]:
    from salad_core.asr import char_error_rate, word_error_rate
    from salad_core.broad.audit import text_form

    rows = []
    for domain in corpus.domains:
        items = [i for i in corpus.task_items(domain.name, split) if subjects.of(i)]
        items = items[:limit] if limit else items
        if not items:
            continue
        heard = model.heard_words(corpus.features([corpus.eval_clip(i.item_id) for i in items], model.encoder))
        questions = [i.question for i in items]
        rows.append({"domain": domain.name, "items": len(items),
                     "subject_heard": sum(spelled(subjects.of(i), text_form(h)) for i, h in zip(items, heard))
                     / len(items),
                     "wer": word_error_rate(questions, heard), "cer": char_error_rate(questions, heard),
                     "examples": [(i.question, h) for i, h in list(zip(items, heard))[:3]]})
    return rows


def training_voices(model, corpus, subjects: Subjects, limit: int) -> dict[str, float]:
    """Per domain: share of its subjects' words spelled out in training speech spans that say them (a world's
    spans of that domain's natural speech; the broad corpus's spans of any source)."""
    from salad_core.broad.audit import text_form

    docs = corpus.speech_docs()
    out = {}
    for domain, words in subjects.words.items():
        if not subjects.broad and domain not in corpus.covered_domains:
            continue
        spans = []  # (span, the subject words it says)
        for doc in docs:
            if subjects.broad or doc.domain == domain:
                spans += [(s, said) for s in doc.spans if s.clip_id
                          if (said := [w for w in text_form(s.text).split() if w in words])]
        spans = spans[:limit or None]
        if not spans:
            continue
        heard = model.heard_words(corpus.features([s.clip_id for s, _ in spans], model.encoder))
        hits = sum(w in set(text_form(h).split()) for (_, said), h in zip(spans, heard) for w in said)
        out[domain] = hits / sum(len(said) for _, said in spans)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a training run id of this data folder, or a model folder")
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--limit", type=int, default=60, help="questions (and training spans) per domain; 0: all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import salad_core.world  # noqa: F401  (registers the world LLM names)
    from salad_core.broad import load_broad
    from salad_core.model.modeling import SaladModel
    from salad_core.model.names import parse_llm_name
    from salad_core.runs import RunDir
    from salad_core.world import preset_world

    folder = Path(args.model) if Path(args.model).exists() else RunDir(args.model, "train").final
    model = SaladModel.from_pretrained(folder).eval()
    llm = parse_llm_name(model.config.llm_name)
    corpus = preset_world(llm.world) if llm.is_world else load_broad()
    subjects = Subjects(corpus)
    with torch.no_grad():
        rows = held_out(model, corpus, subjects, args.split, args.limit)
        trained = training_voices(model, corpus, subjects, args.limit)
    if args.json:
        print(json.dumps({"model": str(folder), "split": args.split, "held_out": rows, "training_voices": trained}))
        return
    print(f"model {folder}, {args.split} questions in the held-out voice; training voices: training speech spans")
    print(f"{'domain':<14}{'items':>6}{'subject heard':>15}{'WER':>7}{'CER':>7}{'subject, training voices':>26}")
    for r in rows:
        seen = trained.get(r["domain"])
        print(f"{r['domain']:<14}{r['items']:>6}{r['subject_heard']:>15.2f}{r['wer']:>7.2f}{r['cer']:>7.2f}"
              f"{'-' if seen is None else format(seen, '.2f'):>26}")
    for r in rows:
        for question, heard in r["examples"][:1]:
            print(f"  {r['domain']}: {question!r} -> {heard!r}")


if __name__ == "__main__":
    main()
