"""The one parser of LLM names: world LMs (with and without their recipe's folder), folders, packaged models, hub
ids; and the callers that read names through it (the explorer's model key, the loader's pinned name)."""

from __future__ import annotations

import json

import pytest

from salad_core.assets import AssetError
from salad_core.model.llm import pinned_llm_name
from salad_core.model.names import parse_llm_name
from salad_core.world.lm import LM_FOLDER


def test_world_names_with_and_without_their_lm_folder():
    plain, pinned = parse_llm_name("world:mini"), parse_llm_name("world:mini/lm-v3")
    assert (plain.kind, plain.world, plain.lm_folder) == ("world", "mini", None)
    assert (pinned.kind, pinned.world, pinned.lm_folder) == ("world", "mini", "lm-v3")
    assert plain.pinned("lm-v9") == "world:mini/lm-v9" and pinned.pinned("lm-v9") == "world:mini/lm-v3"
    assert pinned_llm_name("world:nano") == f"world:nano/{LM_FOLDER}"
    assert pinned_llm_name("world:nano/lm-v2") == "world:nano/lm-v2"


@pytest.mark.parametrize("bad", ["world:", "world:/lm-v3", "world:mini/../../etc", "world:mini/weights", "world:a b"])
def test_malformed_world_names_say_the_accepted_form(bad):
    with pytest.raises(AssetError, match=r"world:<preset>/<lm folder>"):
        parse_llm_name(bad)


def test_folders_packaged_models_and_hub_ids(tmp_path):
    assert parse_llm_name(str(tmp_path)).kind == "folder"
    assert parse_llm_name("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "packaged"
    assert parse_llm_name("smollm2").kind == "packaged"  # an alias
    hub = parse_llm_name("Qwen/Qwen2.5-3B")
    assert hub.kind == "hub" and not hub.is_world and hub.pinned(LM_FOLDER) == "Qwen/Qwen2.5-3B"


def test_the_explorer_keys_a_model_of_a_pinned_world_lm(tmp_path):
    """Models save `world:<preset>/<lm folder>`; the explorer crashed on every such model (issue: 'mini/lm-v3' was
    taken for a preset)."""
    from salad_core.explore import sources

    keys = {}
    for llm in ("world:nano/lm-v3", "world:nano/lm-v2", "world:nano"):
        folder = tmp_path / llm.replace(":", "-").replace("/", "-")
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "config.json").write_text(json.dumps({"llm_name": llm}))
        keys[llm] = sources.model_key(sources.ModelRef(str(folder), "m", "m", str(folder)))
    assert len({k.split("-")[-1] for k in keys.values()}) == 3  # another LM, another cache entry
