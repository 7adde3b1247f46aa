"""The mini world's LM: word-level tokenizer, pretraining, evaluation as `salad eval` does it, the cached folder.

A two-domain toy world built here (a fact domain: which colour each thing has; a skill domain: sums with number
words), written as the mini world writes its corpus (statements and question/answer pairs in the eval prompt's
normalised form), keeps the tests independent of the world builder and fast: one real pretraining run.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from salad_core.assets import AssetError
from salad_core.demo import unknown_words
from salad_core.eval.lanes import prompt_segments
from salad_core.eval.vocabulary import HEADLINE_SCORING
from salad_core.model.llm import load_llm, pinned_llm_name
from salad_core.progress import PROGRESS_ENV, read_progress
from salad_core.tasks import Item
from salad_core.world import lm
from salad_core.world import lm_stopping as stopping
from salad_core.world.tokenizer import SPECIAL_TOKENS, build_tokenizer

THINGS = ["sky", "grass", "snow", "coal", "sun", "sea", "leaf", "blood", "milk", "night", "lemon", "rose"]
COLOURS = ["blue", "green", "white", "black", "yellow", "blue", "green", "red", "white", "black", "yellow", "red"]
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass(frozen=True)
class ToyDomain:
    name: str
    task: str
    kind: str


@dataclass
class ToyWorld:
    """The part of `salad_core.world.World` the LM uses."""

    root: Path
    name: str = "toy"
    domains: list = field(default_factory=lambda: [ToyDomain("colours", "toy-colours", "fact"),
                                                   ToyDomain("sums", "toy-sums", "skill")])

    def text_corpus(self, domain: str | None = None) -> list[str]:
        facts = [f"the colour of the {t} is {c} ." for t, c in zip(THINGS, COLOURS)]
        qa = [f"question : what is the colour of the {t} ? answer : {c} ." for t, c in zip(THINGS, COLOURS)]
        sums = [f"{NUMBERS[a]} plus {NUMBERS[b]} is {NUMBERS[a + b]} ." for a in range(5) for b in range(5)]
        return {"colours": facts + qa, "sums": sums}.get(domain, facts + qa + sums)

    def probe_docs(self) -> list[str]:
        return ["the colour of the ink is black ."]

    def speech_docs(self) -> list:
        return []

    def task_items(self, domain: str, split: str) -> list[Item]:
        return [i for i in self._items(domain) if i.split == split]

    def _items(self, domain: str) -> list[Item]:
        rng = random.Random(domain)
        if domain == "colours":
            pairs = [(f"what is the colour of the {t} ?", c) for t, c in zip(THINGS, COLOURS)]
            options = sorted(set(COLOURS))
        else:
            pairs = [(f"what is {NUMBERS[a]} plus {NUMBERS[b]} ?", NUMBERS[a + b]) for a in range(5) for b in range(5)]
            options = NUMBERS
        items = []
        for n, (question, answer) in enumerate(pairs):
            wrong = rng.sample([o for o in options if o != answer], 3)
            choices = [answer, *wrong]
            rng.shuffle(choices)
            split = ("fewshot", "dev", "test")[n % 3]
            items.append(Item(f"toy-{domain}", str(n), split, question, tuple(choices), choices.index(answer), domain))
        return items


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> ToyWorld:
    return ToyWorld(tmp_path_factory.mktemp("toy-world"))


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """One real pretraining run of the word-level recipe, saved into the world's LM folder through `ensure_world_lm`,
    its progress written to a file as a world build's LM child writes it."""
    progress_file = tmp_path_factory.mktemp("lm-progress") / "progress.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PROGRESS_ENV, str(progress_file))
        folder = lm.ensure_world_lm(world, "lm-v5", steps=400, batch_size=16, eval_every=50, decay_steps=50,
                                    until="target", k_shot=2, row_length=64, hidden=64, layers=2, threads=1)
    return folder, lm.lm_report(world, "lm-v5"), read_progress(progress_file)


# -- tokenizer ------------------------------------------------------------------------------------------------


def test_tokenizer_words_punctuation_and_newlines(world):
    tok = build_tokenizer(lm.tokenizer_texts(world))
    ids = tok("Question: what is the colour of the sky ?\nAnswer: blue", add_special_tokens=False).input_ids
    assert tok.convert_ids_to_tokens(ids) == ["question", ":", "what", "is", "the", "colour", "of", "the", "sky", "?",
                                              "answer", ":", "blue"]  # the newline only separates
    assert tok.decode(ids).split() == "question : what is the colour of the sky ? answer : blue".split()
    # a continuation " word" is exactly the word's id, as the scorer needs
    assert tok(" blue", add_special_tokens=False).input_ids == [tok.convert_tokens_to_ids("blue")]
    assert tok("blue").input_ids == tok("blue", add_special_tokens=False).input_ids  # nothing added either way
    assert [tok.pad_token, tok.unk_token, tok.bos_token, tok.eos_token] == list(SPECIAL_TOKENS)


def test_tokenizer_ids_are_deterministic_and_unknowns_are_reported(world):
    a, b = build_tokenizer(world.text_corpus()), build_tokenizer(list(reversed(world.text_corpus())))
    assert a.get_vocab() == b.get_vocab()
    # by falling frequency after the 4 special tokens, ties alphabetical: "." and "is" 49 times each, "the" 48
    assert a.convert_ids_to_tokens([4, 5, 6]) == [".", "is", "the"]
    assert unknown_words(a, "the colour of the moon is silver") == ["moon", "silver"]
    assert unknown_words(a, "The Colour of the SKY") == []
    assert unknown_words(build_tokenizer(lm.tokenizer_texts(world)), "the ink") == []  # probe words count


def test_every_eval_prompt_round_trips_without_unk(world):
    tok = build_tokenizer(lm.tokenizer_texts(world))
    for domain in world.domains:
        task = stopping.world_task(world, domain.name)
        fewshot = stopping.fewshot_examples(task)
        assert len(fewshot) == min(5, len(task.items("fewshot"))) >= 4
        for item in task.items("dev") + task.items("test"):
            prompt = "".join(s.text for s in prompt_segments(fewshot, item.question))
            for text in [prompt, *(" " + c for c in item.choices)]:
                ids = tok(text, add_special_tokens=False).input_ids
                assert tok.unk_token_id not in ids, (text, unknown_words(tok, text))
                assert tok.decode(ids).split() == text.lower().replace(":", " :").split()


# -- pieces of the trainer ------------------------------------------------------------------------------------


def test_pack_rows_start_at_document_starts():
    import numpy as np

    docs = [[5, 6, 3], [7, 8, 9, 3], [10, 3]]
    rows = lm.pack_rows([docs], 20, 7, np.random.default_rng(0))
    assert rows.shape == (20, 7)
    assert set(rows[:, 0].tolist()) <= {5, 7, 10}
    flat = {tuple(d) for d in docs}
    for row in rows.tolist():  # a row is whole documents back to back, the last one cut
        i = 0
        while i + 1 < len(row):
            doc = next(d for d in flat if d[0] == row[i])
            assert tuple(row[i:i + len(doc)]) == doc[: len(row) - i]
            i += len(doc)


def test_pack_rows_draws_domains_evenly_whatever_their_corpus_size():
    import numpy as np

    big = [[1, 3]] * 900  # one domain with 900 documents, one with a single one
    rows = lm.pack_rows([big, [[2, 3]]], 400, 2, np.random.default_rng(0))
    share = float((rows[:, 0] == 2).float().mean())
    assert 0.4 < share < 0.6


def test_pack_rows_draws_groups_in_proportion_to_their_weights():
    import numpy as np

    groups = [[[1, 3]], [[2, 3]], [[4, 3]]]
    rows = lm.pack_rows(groups, 3000, 2, np.random.default_rng(0), weights=[3.0, 1.0, 0.0])
    firsts = rows[:, 0]
    assert float((firsts == 1).float().mean()) == pytest.approx(0.75, abs=0.03)
    assert not (firsts == 4).any()  # weight 0: never drawn
    # equal weights draw exactly as no weights do, so an LM trained before weights existed is trained again alike
    same = [lm.pack_rows(groups, 50, 4, np.random.default_rng(1), weights=w) for w in (None, [2.0, 2.0, 2.0])]
    assert torch.equal(*same)
    with pytest.raises(ValueError, match="one weight"):
        lm.pack_rows(groups, 1, 2, np.random.default_rng(0), weights=[1.0])


def test_a_subword_tokenizer_spells_unheard_words_with_heard_pieces(world):
    texts = lm.tokenizer_texts(world)
    bpe, word = build_tokenizer(texts, "bpe", vocab_size=120), build_tokenizer(texts, "word")
    assert len(bpe) == 120  # the alphabet, word-initial and continuing, then merges
    unheard = "the colour of the moon is silver"
    assert unknown_words(word, unheard) == ["moon", "silver"] and unknown_words(bpe, unheard) == []
    pieces = bpe.tokenize("moon")
    assert len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:])
    assert bpe.decode(bpe("the colour of the sky", add_special_tokens=False).input_ids) == "the colour of the sky"
    # a continuation " word" tokenizes as the word does inside a text, as the scorer needs
    assert bpe(" silver", add_special_tokens=False).input_ids == bpe("silver", add_special_tokens=False).input_ids
    assert build_tokenizer(list(reversed(texts)), "bpe", vocab_size=120).get_vocab() == bpe.get_vocab()
    with pytest.raises(ValueError, match="vocab_size"):
        build_tokenizer(texts, "bpe")


def _history(*rows: tuple[float, float]) -> list[dict]:
    """Dev evaluations every 100 steps of a (colours, sums) world."""
    return [{"step": 100 * (n + 1), "dev_accuracy": {"colours": c, "sums": s}} for n, (c, s) in enumerate(rows)]


def test_target_rule_decays_as_soon_as_every_fact_domain_is_learnt(world):
    rule = {"target": 0.9, "until": "target", "patience": 2, "min_gain": 0.02}
    assert not stopping.ready_to_decay(_history((0.5, 0.3), (0.85, 0.3)), world, **rule)
    assert stopping.ready_to_decay(_history((0.5, 0.3), (0.95, 0.3)), world, **rule)  # the skill domain is not waited for
    assert not stopping.ready_to_decay([], world, **rule)


def test_plateau_rule_waits_until_the_skill_domains_stop_improving(world):
    rule = {"target": 0.9, "until": "plateau", "patience": 2, "min_gain": 0.02}
    climbing = _history((0.95, 0.3), (1.0, 0.4), (1.0, 0.5), (1.0, 0.6))
    assert not stopping.ready_to_decay(climbing, world, **rule)
    # the mean (0.8) has not beaten its best of step 400 (0.8) by 0.02 at steps 500 and 600
    flat = climbing + _history((1.0, 0.61), (1.0, 0.58))
    assert stopping.ready_to_decay(flat, world, **rule)
    assert not stopping.ready_to_decay(flat[:-1], world, **rule)  # one flat evaluation is not yet `patience` of them
    # a plateau with a fact domain below the target keeps training
    assert not stopping.ready_to_decay(climbing + _history((0.8, 0.6), (0.8, 0.6)), world, **rule)
    with pytest.raises(ValueError, match="stop rule"):
        stopping.ready_to_decay(flat, world, 0.9, "forever", 2, 0.02)


# -- the trained LM -------------------------------------------------------------------------------------------


def test_training_reduces_loss_and_learns_the_fact_domain(trained):
    folder, report, _ = trained
    assert report["steps"] <= 400 and len(report["history"]) >= 1
    first = report["history"][0]
    assert first["loss"] > report["final_loss"]
    assert report["final_loss"] < 1.5  # from ~ln(vocab) = 4 at random init
    assert report["dev_accuracy"]["colours"] == 1.0 and report["target_reached"]  # chance is 0.25
    reached = [h["step"] for h in report["history"] if h["dev_accuracy"]["colours"] >= 0.9]
    assert report["steps"] == min([400, *(step + 50 for step in reached[:1])])  # stops 50 decay steps after the target
    assert report["kinds"] == {"colours": "fact", "sums": "skill"}
    assert json.loads((folder / lm.REPORT_FILE).read_text()) == report


def test_pretraining_shows_its_steps_and_each_dev_check(trained):
    _, report, progress = trained
    assert progress["stage"] == "pretraining toy LM" and progress["closed"]
    assert progress["done"] == report["steps"] and progress["total"] == 400
    assert report["stop_scoring"] == HEADLINE_SCORING  # the checks pick as salad eval does (the v4 recipes: "acc")
    last = report["history"][-1]["dev_accuracy"]
    assert progress["message"] == "dev accuracy " + ", ".join(f"{d} {a:.2f}" for d, a in last.items())


def test_a_world_build_follows_its_lm_childs_progress(tmp_path, monkeypatch):
    """The LM child's progress file, shown by the build as its own bar (and in the build's own progress file, which
    a dashboard job reads) until the child ends."""
    import subprocess
    import sys
    import textwrap

    from salad_core.world import build

    child = textwrap.dedent(f"""
        import time
        from salad_core.progress import Progress
        with Progress(3, "pretraining mini LM", file={str(tmp_path / build.LM_PROGRESS)!r}) as bar:
            for step in range(3):
                time.sleep(0.3)
                bar.update(1, message=f"dev accuracy capitals 0.{{step}}0")
    """)
    (tmp_path / build.LM_LOG).write_text("")
    monkeypatch.setenv(PROGRESS_ENV, str(tmp_path / "build.json"))
    monkeypatch.setattr(build, "FOLLOW_EVERY_S", 0.1)
    build._finish_lm(subprocess.Popen([sys.executable, "-c", child]), tmp_path)
    shown = read_progress(tmp_path / "build.json")
    assert (shown["stage"], shown["done"], shown["total"]) == ("pretraining mini LM", 3, 3)
    assert shown["message"] == "dev accuracy capitals 0.20" and shown["closed"]
    assert not (tmp_path / build.LM_PROGRESS).exists() and not (tmp_path / build.LM_LOG).exists()


def test_saved_lm_loads_through_load_llm_with_identical_logits(world, trained):
    folder, report, _ = trained
    model, tok = load_llm(str(folder))
    assert model.config.tie_word_embeddings and model.config.hidden_size == report["hidden"] == 64
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert len(tok) == report["vocab_size"]
    ids = torch.tensor([tok("Question: what is the colour of the snow ?\nAnswer: white").input_ids])
    reloaded, _ = load_llm(str(folder))
    assert torch.equal(model(input_ids=ids).logits, reloaded(input_ids=ids).logits)
    # the accuracy recomputed from the saved files is the one the training report states
    assert stopping.text_accuracy(model, tok, world, "dev", k_shot=2) == report["dev_accuracy"]


def test_second_call_reuses_the_cached_lm(world, trained, monkeypatch):
    folder, _, _ = trained
    stamp = (folder / "model.safetensors").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("retrained")

    monkeypatch.setattr(lm, "pretrain_world_lm", fail)
    assert lm.ensure_world_lm(world, "lm-v5") == folder == lm.world_lm_dir(world, "lm-v5")
    assert lm.world_lm_dir(world) == world.root / lm.LM_FOLDER  # a plain world name means today's recipe
    monkeypatch.setattr(lm, "load_world", lambda preset: world if preset == "toy" else None)
    assert lm.resolve_world_llm("world:toy/lm-v5") == folder  # the loader's name for a world's LM
    assert lm.resolve_world_llm(pinned_llm_name("world:toy/lm-v5")) == folder  # ... and the name a model saves
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(folder.parent.glob(".lm-*"))  # no temporary folder left behind


def test_resolve_world_llm_names():
    assert lm.resolve_world_llm("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    with pytest.raises(AssetError, match="world:mini"):
        lm.resolve_world_llm("world:")


def test_a_saved_name_pins_the_lm_folder_of_its_recipe(world, trained, monkeypatch):
    folder, _, _ = trained
    assert pinned_llm_name("world:toy") == f"world:toy/{lm.LM_FOLDER}"
    assert pinned_llm_name(f"world:toy/{lm.LM_FOLDER}") == f"world:toy/{lm.LM_FOLDER}"
    assert pinned_llm_name("Qwen/Qwen2.5-3B") == "Qwen/Qwen2.5-3B"
    monkeypatch.setattr(lm, "load_world", lambda preset: world if preset == "toy" else None)
    earlier = folder.with_name("lm-v0")  # an earlier recipe's LM, kept in the world folder
    shutil.copytree(folder, earlier)
    assert lm.resolve_world_llm("world:toy/lm-v0") == earlier
    with pytest.raises(AssetError, match="holds no trained LM 'lm-v9'.*world:toy for today's LM"):
        lm.resolve_world_llm("world:toy/lm-v9")
    with pytest.raises(AssetError, match="not a world LM name"):
        lm.resolve_world_llm("world:toy/../../etc")


def test_bad_training_arguments_are_refused(world, tmp_path):
    with pytest.raises(ValueError, match="steps"):
        lm.pretrain_world_lm(world, tmp_path, steps=0, progress=False)
    with pytest.raises(ValueError, match="until='forever'"):
        lm.pretrain_world_lm(world, tmp_path, until="forever", progress=False)
    with pytest.raises(ValueError, match=r"\['poetry'\], not domains"):
        lm.pretrain_world_lm(world, tmp_path, domain_weights={"poetry": 2.0}, progress=False)
