"""Side-by-side demo: one question, answered by the original LLM reading it, the speech model hearing it, and the
Whisper ASR -> original LLM cascade, with each option's probability.

The model is the one the selected evaluation run used (the offline `smol` preset when the store is empty). It is
loaded once per server (`st.cache_resource`) and scores one question per click, through the same lanes and prompt
as `salad eval`. Widget keys start with `demo_`.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import charts, data, widgets
from salad_core.eval.config import EvalConfig
from salad_core.eval.vocabulary import LANE_LABELS

SOURCES = ("An item from a task", "My own question")
AUDIO_MODES = ("Synthesize it", "Upload a recording", "Record with the microphone")


@st.cache_resource(show_spinner="Loading the models (first time: up to a minute)…")
def demo_session(run_config_json: str):
    from salad_core.demo import DemoSession

    return DemoSession.from_run_config(json.loads(run_config_json))


@st.cache_data(show_spinner=False)
def task_items(task: str, manifest: str | None = None) -> pd.DataFrame:
    from salad_core.tasks import get_task, load_manifest

    if manifest and task in demo_manifest_tasks(manifest):
        items = [i for i in load_manifest(manifest).items if i.task == task and i.split == "test"][:200]
    else:
        items = get_task(task).items("test", limit=200)
    return pd.DataFrame({"question": [i.question for i in items], "choices": [list(i.choices) for i in items],
                         "answer": [i.answer for i in items]})


@st.cache_data(show_spinner=False)
def demo_manifest_tasks(manifest: str) -> list[str]:
    from salad_core.tasks import load_manifest

    return load_manifest(manifest).tasks


@st.cache_data(ttl=data.TTL_S, show_spinner=False)
def demo_tasks(config_json: str) -> list[str]:
    """The tasks whose questions the model can read: a world model's own world's, else the built-in suite and the
    run's manifest (a world LM's word-level vocabulary knows no digit, no capital letter, no word of the suite)."""
    from salad_core.model.names import parse_llm_name
    from salad_core.presets import run_llm_name
    from salad_core.tasks import available_tasks, suite_tasks
    from salad_core.world import world_tasks

    config = json.loads(config_json)
    llm = parse_llm_name(run_llm_name(config))
    if llm.is_world:
        return [t for t in available_tasks() if t in world_tasks(llm.world)]
    manifest = demo_manifest_tasks(config["manifest"]) if config.get("manifest") else []
    return suite_tasks() + manifest


@st.cache_data(show_spinner=False)
def engines_and_voices() -> dict[str, list[str]]:
    from salad_core.tts import list_engines, list_voices

    return {engine: list_voices(engine) for engine in list_engines()}


def run_config() -> dict:
    """The selected run's config, or the defaults of `salad eval` when there is none (the preset's shipped adapter)."""
    run_id, path = st.session_state.get("run_id"), data.current_store_path()
    runs = data.runs(path, "eval") if run_id else pd.DataFrame()
    if run_id and run_id in set(runs["run_id"]):
        config = runs.set_index("run_id").loc[run_id, "config"]
        return json.loads(config) if isinstance(config, str) else dict(config)
    return asdict(EvalConfig().resolved())


def pick_question(config: dict) -> tuple[str, list[str], int, str | None]:
    tasks = demo_tasks(json.dumps(config, sort_keys=True, default=str))
    if not tasks:
        st.warning("No task this model can read is available here: a world model is asked its world's questions, and "
                   "its world is not built on this machine. Fix: `salad world build --corpus "
                   f"{config.get('preset', 'mini')}`, or type a question below.")
    first = task_items(tasks[0], config.get("manifest")).iloc[0] if tasks else None
    if tasks and st.radio("Question", SOURCES, horizontal=True, key="demo_source") == SOURCES[0]:
        task = st.selectbox("Task", tasks, key="demo_task")
        items = task_items(task, config.get("manifest"))
        row = st.selectbox("Item", items.index, format_func=lambda i: items.loc[i, "question"], key="demo_item")
        item = items.loc[row]
        st.caption("Options: " + " · ".join(item["choices"]) + f" — correct: **{item['choices'][item['answer']]}**")
        return item["question"], list(item["choices"]), int(item["answer"]), task
    # the typed question starts as one of the model's own tasks' (the suite's first: a capital city)
    question = st.text_input("Question", first["question"] if first is not None else "", key="demo_question")
    default_choices = [first["choices"][first["answer"]], *[c for j, c in enumerate(first["choices"])
                                                            if j != first["answer"]]] if first is not None else []
    lines = st.text_area("Answer options, one per line (the first is taken as correct)", "\n".join(default_choices),
                         key="demo_choices")
    return question, [line for line in lines.splitlines() if line.strip()], 0, None


def pick_audio(question: str, default_voice: str) -> tuple[np.ndarray | None, str]:
    """The speech the speech lanes hear, and a note on where it came from. None (with an error shown) if unusable."""
    from salad_core.audio import AudioError, load_audio

    mode = st.radio("Speech", AUDIO_MODES, horizontal=True, key="demo_audio_mode")
    try:
        if mode == AUDIO_MODES[0]:
            return synthesized(question, default_voice)
        upload = (st.file_uploader("Audio file (wav, flac, ogg)", type=["wav", "flac", "ogg"], key="demo_upload")
                  if mode == AUDIO_MODES[1] else st.audio_input("Record the question", key="demo_record"))
        if upload is None:
            st.info("Add audio to hear the speech lanes.")
            return None, ""
        return load_audio(upload.getvalue(), name=upload.name or "recording"), f"{mode.lower()}: {upload.name}"
    except (AudioError, ValueError) as err:
        st.error(str(err))
        return None, ""


def synthesized(question: str, default_voice: str) -> tuple[np.ndarray, str]:
    from salad_core.audio import load_audio
    from salad_core.tts import VoiceSpec, synthesize

    voices, default = engines_and_voices(), VoiceSpec.parse(default_voice)
    engines = list(voices)
    left, middle, right = st.columns(3)
    engine = left.selectbox("TTS engine", engines, index=engines.index(default.engine) if default.engine in voices else 0,
                            key="demo_engine")
    names = voices[engine]
    voice = middle.selectbox("Voice", names, index=names.index(default.voice) if default.voice in names else 0,
                             key=f"demo_voice_{engine}")
    speed = right.slider("Speed", 0.7, 1.3, default.speed, 0.05, key="demo_speed")
    spec = VoiceSpec(engine, voice, speed)
    with st.spinner(f"Speaking with {spec.key()}…"):
        path = synthesize(question, spec)
    return load_audio(path), f"synthesized with {spec.key()}"


def show_answer(answer, correct: str) -> None:
    if answer.unknown_words:
        st.warning("This model's word-level vocabulary has no entry for " +
                   ", ".join(f"`{w}`" for w in answer.unknown_words) + ": it reads each of them as the same unknown "
                   "token, so its lanes cannot tell those words apart. Ask with the words of its world (the task "
                   "items above show them).")
    widgets.chart(charts.option_probability_bars(answer.options), "demo_chart", name="demo-answer")
    st.markdown(f"Cascade transcript: _{answer.transcript or '(nothing recognised)'}_")
    picks = answer.options[answer.options["chosen"]][["label", "option"]]
    picks = picks.assign(correct=picks["option"] == correct).rename(columns={"label": "lane", "option": "answer"})
    widgets.table(picks, "demo_picks", name="demo-picks")
    st.markdown("**In their own words**: what each lane writes after the prompt, greedily, to the end of the line.")
    said = pd.DataFrame({"lane": [LANE_LABELS[lane] for lane in answer.words], "answer": list(answer.words.values())})
    widgets.table(said, "demo_words", name="demo-words")


def main() -> None:
    st.title("Side-by-side demo")
    st.caption("One question, three ways: the original LLM reads it, the speech-adapted model hears it, and Whisper "
               "transcribes it for the original LLM. Each bar is an option's probability among the options (its "
               "likelihood as a continuation of the question, renormalised over the options); ✓ marks the lane's pick, "
               "scored as `salad eval` scores (by default the likelihood per character of the option).")
    config = run_config()
    question, choices, answer, task = pick_question(config)
    from salad_core.eval.vocabulary import DEFAULT_VOICE, WORLD_VOICE

    voice = config.get("voice") or DEFAULT_VOICE  # a world run's items were spoken by the world: offer a TTS voice
    audio, origin = None, ""
    if question.strip():
        audio, origin = pick_audio(question, DEFAULT_VOICE if voice == WORLD_VOICE else voice)
    else:
        st.info("Type a question (and its answer options) to hear it and ask every lane.")
    if audio is not None:
        st.audio(audio, sample_rate=16000)
        st.caption(origin)
    if not config.get("model_path"):
        st.info("This model's adapter is untrained (no Stage I checkpoint yet), so the speech lane answers near "
                "chance; the original LLM and the cascade show what the speech lane should reach.")
    if st.button("Answer", type="primary", disabled=audio is None or len(choices) < 2, key="demo_go"):
        try:
            session = demo_session(json.dumps(config, sort_keys=True, default=str))
            with st.spinner("Scoring the options on every lane…"):
                st.session_state["demo_answer"] = (session.answer(question, choices, audio, task, answer), choices[answer])
        except (ValueError, RuntimeError) as err:
            st.error(str(err))
    if "demo_answer" in st.session_state:
        show_answer(*st.session_state["demo_answer"])


main()
