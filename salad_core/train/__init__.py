"""Stage I (and later Stage II) training: cross-modal distillation from the original text LLM (SALAD, "Training")."""
