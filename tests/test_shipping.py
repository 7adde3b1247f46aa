"""Shipped adapters: `salad ship` writes a run's model as float16 with its model card, and `salad eval` of the
preset loads it unless told `--adapter none`."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from salad_core import presets
from salad_core.cli import main
from salad_core.eval.config import EvalConfig
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.shipping import TABLE, metrics_table, write_weights


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A preset folder holding a (tiny) shipped model."""
    folder = tmp_path / "adapters" / "smol"
    folder.mkdir(parents=True)
    save_file({"adapter.w": torch.ones(2)}, folder / "model.safetensors")
    monkeypatch.setattr(presets, "ADAPTERS_DIR", tmp_path / "adapters")
    return folder


def test_a_preset_evaluates_its_shipped_adapter_unless_told_otherwise(shipped):
    assert presets.shipped_adapter("smol") == shipped and presets.shipped_adapter("nano") is None
    assert EvalConfig().resolved().model_path == str(shipped)
    assert EvalConfig(adapter="none").resolved().model_path is None  # the untrained adapter, as before
    assert EvalConfig(llm="some/other-llm").resolved().model_path is None  # another LLM: that adapter cannot fit
    assert EvalConfig(model_path="/my/run/final").resolved().model_path == "/my/run/final"
    assert EvalConfig(preset="nano").resolved().model_path is None


def test_without_a_shipped_adapter_the_preset_is_untrained(tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "ADAPTERS_DIR", tmp_path)
    assert EvalConfig().resolved().model_path is None


def test_adapter_flag_takes_only_known_values(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--adapter", "best"])
    assert "invalid choice: 'best'" in capsys.readouterr().err


def test_weights_ship_as_float16_beside_their_config(tmp_path):
    source, out = tmp_path / "final", tmp_path / "out"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"llm_name": "x", "adapter_width": 8}))
    save_file({"adapter.a": torch.randn(4, 4), "ctc.blank.bias": torch.randn(1)}, source / "model.safetensors")
    size = write_weights(source, out)
    weights = load_file(out / "model.safetensors")
    assert {v.dtype for v in weights.values()} == {torch.float16} and set(weights) == {"adapter.a", "ctc.blank.bias"}
    assert torch.allclose(weights["adapter.a"].float(), load_file(source / "model.safetensors")["adapter.a"], atol=1e-2)
    assert json.loads((out / "config.json").read_text())["adapter_width"] == 8 and size > 0


def test_the_model_card_table_has_a_row_per_task_and_all_tasks_last():
    rows = []
    for task, speech in (("capitals", 0.6), ("arithmetic", 0.9), (ALL_TASKS, 0.75)):
        rows += [{"task": task, "metric": "speech_acc", "value": speech, "ci_low": speech - 0.1,
                  "ci_high": speech + 0.1, "n": 40, "step": None},
                 {"task": task, "metric": "M", "value": 0.25, "ci_low": 0.2, "ci_high": 0.3, "n": 40, "step": None},
                 {"task": task, "metric": "speech_acc", "value": 0.1, "ci_low": 0, "ci_high": 0.2, "n": 40, "step": 5}]
    table = metrics_table(pd.DataFrame(rows)).splitlines()
    assert table[0].startswith("| task | n | original LLM, text | text | speech |")
    assert [line.split(" | ")[0] for line in table[2:]] == ["| arithmetic", "| capitals", "| all tasks"]
    assert "| 90.0 [80.0, 100.0] |" in table[2] and "| 0.250 [0.200, 0.300] |" in table[2]  # final values only
    assert table[2].count("–") == len(TABLE) - 2  # the metrics it lacks are dashes


@pytest.mark.slow
def test_salad_ship_writes_a_runs_model_and_its_card(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(pipeline.data))
    out = tmp_path / "shipped"
    code = main(["ship", pipeline.alpha1, "--eval", pipeline.eval_run, "--db", str(pipeline.store.path),
                 "--out", str(out)])
    assert code == 0
    card = (out / "README.md").read_text()
    assert pipeline.alpha1 in card and pipeline.eval_run in card and "salad train --preset nano" in card
    assert "| all tasks |" in card and "machine (from step 0" in card
    from salad_core.model.modeling import SaladModel

    model = SaladModel.from_pretrained(out)  # loads as any saved model
    assert model.config.llm_name == json.loads((pipeline.final(pipeline.alpha1) / "config.json").read_text())["llm_name"]
