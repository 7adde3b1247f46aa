"""The mini world v6 measures transfer, not recall: facts split by purpose, no eval fact in any training-speech
source or in the selection pool (the audit, and an independent check of the exported files), and a build that
refuses to finish when a generator leaks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from salad_core.world import audit, build, build_world, corpus
from salad_core.world.domains import domain_defs
from salad_core.world.skills import arithmetic_facts, calendar_facts


@pytest.fixture(scope="module")
def world():
    return build_world("nano", progress=False)


def test_the_audit_finds_a_fact_in_any_wording_and_only_there():
    facts = {f.key: f for f in arithmetic_facts(0, 0) + calendar_facts(0, 0)}
    auditor = audit.Auditor([facts["plus/3/4"], facts["day/monday/after/2"]])
    assert auditor.stated("three plus four is seven .") == {"plus/3/4"}
    assert auditor.stated("quick one , what is three plus four ? oh , seven , i think .") == {"plus/3/4"}
    assert auditor.stated("twenty three plus four is twenty seven .") == set()  # whole numbers, not their parts
    assert auditor.stated("three plus four ... no . seven is a number .") == set()  # another sentence
    assert auditor.stated("um , two days after monday is wednesday , right .") == {"day/monday/after/2"}
    animals = {f.key: f for f in domain_defs("mini")[2].facts(0, 0)}
    cod = audit.Auditor([animals["food/cod"], animals["legs/whale"]])
    assert cod.stated("a cod is a fish .") == set()  # what a cod is, not what it eats
    assert cod.stated("a cod eats fish , you know .") == {"food/cod"}
    assert cod.stated("a whale has no legs .") == {"legs/whale"}  # "none", said another way


def test_facts_split_by_purpose(world):
    facts = [json.loads(line) for line in (world.root / "facts.jsonl").read_text().splitlines()]
    by_split = defaultdict(set)
    for fact in facts:
        by_split[fact["split"]].add((fact["domain"], fact["group"]))
    assert not by_split["eval"] & by_split["train"]  # a group (both directions of a capital, a+b and b+a) never splits
    items = {(i.domain, i.doc_id) for d in world.domains for i in world.all_items(d.name)}
    evaluated = {(f["domain"], f["key"]) for f in facts if f["split"] == "eval"}
    assert items and items <= evaluated  # every dev, test and few-shot item is an eval fact
    for name in ("animals", "elements"):  # an entity is heard in one of its other relations
        entities = defaultdict(set)
        for fact in facts:
            if fact["domain"] == name:
                entities[fact["subject"][0]].add(fact["split"])
        assert all("train" in splits for splits in entities.values()), name


def test_no_training_source_states_an_eval_fact(world):
    rows = world.audit()
    assert {r["source"] for r in rows} == {"natural speech", "alignment transcripts", "selection pool"}
    assert sum(r["leaked"] for r in rows) == 0 and all(r["eval_facts"] > 0 for r in rows)
    assert world.info()["audit"] == rows  # what the build recorded


def test_the_export_agrees_with_the_audit_by_an_independent_check(world, tmp_path):
    """Anyone can check a world with their own tools: here, a naive one (the answer and the question's content words
    in one sentence of a training text) over the exported files finds what the audit finds: nothing."""
    written = world.export(tmp_path)
    assert written["eval_items.jsonl"] == sum(len(world.all_items(d.name)) for d in world.domains)
    read = {name: [json.loads(line) for line in (tmp_path / name).read_text().splitlines()] for name in written}
    assert set(read["eval_items.jsonl"][0]) == {"task", "split", "question", "choices", "answer"}
    stop = {"what", "is", "the", "of", "a", "an", "which", "does", "do", "how", "many", "where", "?", "in"}
    sentences = [set(s.split()) for row in read["speech_train.jsonl"] + read["selection_pool.jsonl"]
                 for s in re.split(r" [.?] ", row["text"])]

    def stated(item: dict) -> bool:
        needed = (set(item["question"].split()) - stop) | set(item["choices"][item["answer"]].split())
        return any(needed <= sentence for sentence in sentences)

    assert [i["question"] for i in read["eval_items.jsonl"] if stated(i)] == []
    assert len(read["speech_train.jsonl"]) == len(world.speech_docs()) and read["selection_pool.jsonl"]


def test_a_leaking_generator_stops_the_build_with_the_audit_table(monkeypatch):
    split = corpus.split_facts

    def leaky(definition, facts, share, seed):  # an eval fact also said as a train fact
        held, kept = split(definition, facts, share, seed)
        return held, kept + held[:1]

    monkeypatch.setattr(corpus, "split_facts", leaky)
    cfg = build.preset_config("nano")
    with pytest.raises(audit.LeakError, match=r"(?s)task .*natural speech.*selection pool.*nano-capitals"):
        build._write_world(None, "nano", cfg, progress=False, lm=False)  # refuses before writing anything


def test_salad_world_audit_and_export_commands(world, tmp_path):
    def salad(*args: str, corpus: str = "--corpus") -> tuple[dict, str]:
        done = subprocess.run([sys.executable, "-m", "salad_core.cli", "world", *args, corpus, "nano", "--json"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout), done.stderr

    audited, said = salad("audit")
    assert audited["audit"] == world.audit() and "deprecated" not in said
    old, said = salad("audit", corpus="--preset")  # the old name still works for one release, and says so
    assert old == audited and "--preset is deprecated" in said and "use --corpus nano" in said
    exported, _ = salad("export", "--out", str(tmp_path))
    assert exported["files"] == world.export(tmp_path / "again")
