"""Diagnosing speech LLMs that salad did not build: the `transformers` speech LLM families (family.py, families/),
one wrapper that lets the evaluation score them like a SaladModel (model.py), and tiny random-weight models of each
family for offline tests (tiny.py)."""
