"""How a mini world's LM is pretrained, as plain data (no torch: the LLM-name registry pins names with it).

A recipe is a folder name in the world (`world:<preset>/<recipe>` names its LM) and the options `pretrain_world_lm`
takes; a world preset adds its own (`PRESET_PRETRAINING`). LM_FOLDER is the recipe a plain `world:<preset>` means.
"""

from __future__ import annotations

LM_RECIPES: dict[str, dict] = {
    "lm-v4": {"tokenizer": "word"},
    "lm-v4-bpe": {"tokenizer": "bpe", "vocab_size": 400},  # subwords: an unheard word is made of heard pieces
}
# The subword LM: on the mini world's dev split its Stage I model answered the spoken questions of the covered fact
# domains far better than the word-level one's (capitals 0.51 against 0.22, docs/results/stage1.md): a CTC aid
# over word pieces gets a rarely heard name nearly right ("elbania") where one over whole words loses it.
LM_FOLDER = "lm-v4-bpe"

# The nano world exists to run the whole pipeline in tests: its LM gets a short pretraining (half the mini LM's batch:
# a minute on 2 cores), not a quality target.
# The mini LM trains until its skill domains stop improving too: a teacher stopped while they still climb leaves
# plain NLL something to teach that distillation cannot. Arithmetic, calendar and stories are drawn three times as
# often: they are learnt last, and drawn as often as the facts, stories were still at chance (0.24) when the other
# domains had plateaued (950 steps), against 0.54 after 1,450 steps with three times as many (docs/world.md).
PRESET_PRETRAINING = {"nano": {"steps": 200, "batch_size": 16, "eval_every": 100, "until": "target"},
                      "mini": {"steps": 2400, "eval_every": 100, "patience": 1, "decay_steps": 150,
                               "domain_weights": {"arithmetic": 3.0, "calendar": 3.0, "stories": 3.0}}}
