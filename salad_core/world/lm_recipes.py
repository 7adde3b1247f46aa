"""How a mini world's LM is pretrained, as plain data (no torch: the LLM-name registry pins names with it).

A recipe is a folder name in the world (`world:<preset>/<recipe>` names its LM) and the options `pretrain_world_lm`
takes; a world preset adds its own (`PRESET_PRETRAINING`). LM_FOLDER is the recipe a plain `world:<preset>` means.
"""

from __future__ import annotations

LM_RECIPES: dict[str, dict] = {
    # v5: the dev checks that decide when pretraining decays pick each answer by the evaluation's headline scoring
    # (acc_norm), as salad eval and the training curves do. On the mini world the LM then decays at step 1,401, not
    # 1,201 (docs/world.md).
    "lm-v5": {"tokenizer": "word"},
    "lm-v5-bpe": {"tokenizer": "bpe", "vocab_size": 400},  # subwords: an unheard word is made of heard pieces
    # v4, as they were made (the results of docs/results/stage1.md and stage2.md): the checks picked by plain acc
    "lm-v4": {"tokenizer": "word", "stop_scoring": "acc"},
    "lm-v4-bpe": {"tokenizer": "bpe", "vocab_size": 400, "stop_scoring": "acc"},
}
# The subword LM: on the mini world's dev split its Stage I model answered the spoken questions of the covered fact
# domains far better than the word-level one's (capitals 0.51 against 0.22, docs/results/stage1.md): a CTC aid
# over word pieces gets a rarely heard name nearly right ("elbania") where one over whole words loses it.
LM_FOLDER = "lm-v5-bpe"

# The nano world exists to run the whole pipeline in tests: its LM gets a short pretraining (half the mini LM's batch:
# a minute on 2 cores), not a quality target.
# The mini LM trains until its skill domains stop improving too: a teacher stopped while they still climb leaves
# plain NLL something to teach that distillation cannot. Arithmetic, calendar and stories are drawn three times as
# often: they are learnt last, and drawn as often as the facts, stories were still at chance (0.24) when the other
# domains had plateaued (950 steps), against 0.54 after 1,450 steps with three times as many (docs/world.md).
PRESET_PRETRAINING = {"nano": {"steps": 200, "batch_size": 16, "eval_every": 100, "until": "target"},
                      "mini": {"steps": 2400, "eval_every": 100, "patience": 1, "decay_steps": 150,
                               "domain_weights": {"arithmetic": 3.0, "calendar": 3.0, "stories": 3.0}}}
