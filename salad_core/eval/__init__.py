"""Evaluation: multiple-choice scoring, metrics with confidence intervals, token-level F and M, the eval run."""
