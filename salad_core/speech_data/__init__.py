"""A user's speech corpus for Stage I: utterances from the hub, Lhotse or a JSONL manifest, read lazily and made into
interleaved documents."""
