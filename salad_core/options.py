"""The fixed option sets of salad's configs, as plain data: configs validate against them, the command line and the
dashboard's forms offer them, and nothing here imports torch (a page reads them when it opens)."""

from __future__ import annotations

KL_DIRECTIONS = ("forward", "reverse")  # forward = KL(teacher || student); the paper leaves it open
LLM_MODES = ("frozen", "lora", "full")  # what of the LLM learns
CTC_READS = ("adapter", "soft")  # with the CTC aid, what the LLM reads per kept frame (model/ctc.py, `compress`)
