"""The side-by-side demo: its chart builder, and the page answering a typed question with the real smol models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import charts
from salad_core.paths import REPO_ROOT

APP = str(REPO_ROOT / "dashboard" / "app.py")


def test_option_probability_bars_one_trace_per_lane_with_the_pick_outlined():
    options = pd.DataFrame({
        "lane": ["base_text"] * 2 + ["speech"] * 2,
        "label": ["original LLM, reading"] * 2 + ["speech model, hearing"] * 2,
        "option": ["Paris", "Lyon"] * 2,
        "probability": [0.9, 0.1, 0.4, 0.6],
        "chosen": [True, False, False, True],
    })
    fig = charts.option_probability_bars(options)
    assert [t.name for t in fig.data] == ["original LLM, reading", "speech model, hearing"]
    assert list(fig.data[1].y) == [0.4, 0.6]
    assert list(fig.data[1].marker.line.width) == [0, 3]
    assert fig.layout.yaxis.title.text == "probability among the options (fraction)" and fig.layout.showlegend
    numeric = charts.option_probability_bars(options.assign(option=["70", "72"] * 2))
    assert numeric.layout.xaxis.type == "category"  # numeric options are answers, not positions on an axis


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SALAD_NO_AUTOSTART", "1")
    monkeypatch.delenv("SALAD_STORE", raising=False)
    st.cache_data.clear()


def demo_page(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    at.switch_page("../pages/demo.py").run()
    assert not at.exception
    return at


def test_demo_page_renders_and_says_when_the_adapter_is_untrained(empty_data, tmp_path, monkeypatch):
    from salad_core import presets

    at = demo_page()  # an empty store: the smol preset with its shipped adapter
    assert [t.value for t in at.title] == ["Side-by-side demo"]
    assert presets.shipped_adapter("smol") is not None and not any("untrained" in i.value for i in at.info)
    assert at.selectbox(key="demo_task").value  # the task suite is offered
    monkeypatch.setattr(presets, "ADAPTERS_DIR", tmp_path / "none")  # a preset that ships no adapter
    at = demo_page()
    assert any("untrained" in i.value for i in at.info)


def test_demo_answers_a_typed_question_on_every_lane(empty_data):
    at = demo_page()
    at.radio(key="demo_source").set_value("My own question").run()
    at.text_input(key="demo_question").set_value("What is the capital of France?")
    at.text_area(key="demo_choices").set_value("Paris\nLyon\nMarseille\nNice").run()
    at.button(key="demo_go").click().run(timeout=300)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1
    answer, correct = at.session_state["demo_answer"]
    assert correct == "Paris"
    options = answer.options
    assert set(options["lane"]) == {"base_text", "speech", "cascade"}
    assert options.groupby("lane")["probability"].sum().round(6).eq(1.0).all()
    chosen = options[options["chosen"]].set_index("lane")["option"]
    assert chosen["base_text"] == "Paris"  # SmolLM2 knows this one from text
    assert "capital" in answer.transcript.lower()
    assert answer.unknown_words == []  # SmolLM2's byte-level tokenizer reads anything
    assert set(answer.words) == {"base_text", "speech", "cascade"}  # each lane's answer in its own words
    assert "paris" in answer.words["base_text"].lower() and "\n" not in answer.words["base_text"]
    assert "paris" in answer.words["cascade"].lower()  # the cascade heard the question, so it reads it as text does


def test_a_world_run_is_demoed_in_a_tts_voice(empty_data, tmp_path, monkeypatch):
    from salad_core.store import Store

    store = Store(tmp_path / "world.duckdb")
    run_id = store.create_run("eval", {"preset": "nano", "voice": "world", "model_path": None})
    store.finish_run(run_id)
    monkeypatch.setenv("SALAD_STORE", str(store.path))
    at = demo_page()
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["run_id"] == run_id


def test_a_world_model_is_asked_only_its_worlds_questions(empty_data, tmp_path, monkeypatch):
    """A mini-world model reads a word-level vocabulary: the built-in suite ('What is 10 times 8?') is not offered."""
    from salad_core.store import Store
    from salad_core.world import build_world

    build_world("nano", progress=False)
    store = Store(tmp_path / "world.duckdb")
    run_id = store.create_run("eval", {"preset": "nano", "voice": "world", "model_path": None})
    store.finish_run(run_id)
    monkeypatch.setenv("SALAD_STORE", str(store.path))
    at = demo_page()
    tasks = at.selectbox(key="demo_task").options
    assert tasks and all(t.startswith("nano-") for t in tasks)
    at.radio(key="demo_source").set_value("My own question").run()
    assert at.text_input(key="demo_question").value.endswith("?")  # a question of the world, in its words


def test_words_a_world_model_cannot_read_are_named(empty_data):
    from salad_core.audio import load_audio
    from salad_core.demo import DemoSession
    from salad_core.tts import VoiceSpec, synthesize
    from salad_core.world import build_world

    build_world("nano", progress=False)
    session = DemoSession.from_run_config({"preset": "nano", "asr": "whisper-tiny.en"})
    question = "what is 8 % ?"  # the world's subword vocabulary spells digits, but never saw "%" or "é"
    answer = session.answer(question, ["70", "72", "café", "88"], load_audio(synthesize(question, VoiceSpec("espeak", "en-us"))))
    assert answer.unknown_words == ["%", "é"]


def test_a_word_level_vocabulary_names_every_unread_word():
    from salad_core.demo import unknown_words
    from salad_core.world.tokenizer import build_tokenizer

    tokenizer = build_tokenizer(["what is two plus two ? four ."], "word")
    assert unknown_words(tokenizer, "what is 8 plus seventy ? 8") == ["8", "seventy"]


def test_a_lanes_words_start_with_its_most_likely_next_token():
    import torch

    from salad_core.eval.lanes import LaneScorer, PreparedItem, greedy_answer, prompt_segments
    from salad_core.model.processing import pair_segments
    from salad_core.tasks import Item
    from tests.tiny_models import tiny_salad

    model = tiny_salad()
    item = Item("demo", "1", "test", "what is three plus four ?", ("seven", "eight"), 0, "demo")
    tone = (0.3 * np.sin(np.arange(8000) * 2 * np.pi * 440 / 16000)).astype(np.float32)
    scorer = LaneScorer(model, None, max_new_tokens=4)
    words = scorer.answers(PreparedItem(item, "1", tone, "a"), [], ["base_text", "text", "speech"])
    assert set(words) == {"base_text", "text", "speech"} and all(isinstance(w, str) for w in words.values())
    context = model.embed_text(pair_segments(model.tokenizer, prompt_segments([], item.question), []).teacher_ids)
    with torch.no_grad():
        first = int(model.llm(inputs_embeds=context[None]).logits[0, -1].argmax())
        one = greedy_answer(model.llm, model.tokenizer, context, max_new_tokens=1)
    assert one == model.tokenizer.decode([first]).strip().split("\n")[0].strip()
