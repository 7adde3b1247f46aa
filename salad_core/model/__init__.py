"""The speech-adapted LLM: frozen speech encoder -> trainable adapter -> causal LLM."""
