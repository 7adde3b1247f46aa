"""SALAD Stage II: active selection of synthetic speech where the Stage I model is still misaligned.

A round (`round.run_round`, the `salad select` command) is a Ray Data pipeline of stages that resume
(`stages.py`); one module per concept:

    pool.py            text pools (the world's, hub datasets, parquet/JSONL globs, text folders), keyed documents
    pool_stages.py     read → leak audit → exact duplicates dropped → embeddings on disk, shared by rounds
    embed.py           sentence-transformers or static (model2vec) embeddings, and their Ray actor
    clustering.py      balanced k-means in memory (every cluster within ±10 % of N/K), and balancing prices
    assign.py          centroids on a sample, the balanced assignment of every document, shard by shard
    draws.py           probes and two-level sampling by seeded rank, whatever the split of the pool
    speech_actors.py   documents spoken by a TTS + encoder actor pool into one clip bank
    probing.py         per-cluster misalignment M(c) on spoken probes, and their intelligibility (ASR CER)
    probe_actors.py    the model actor and the ASR actor that measure them
    allocation.py      P_target(c) ∝ P_web(c) · M(c)^γ
    round_stages.py    probes, scores, selected speech and the cluster map as stages
    round.py           the round end to end, its record in the store, and `SelectedSpeech` for Stage II training
    ray_runtime.py     a local Ray or a cluster, and how many actors a stage may start
    report.py          rounds, budget allocation and Stage I vs Stage II per task, from the store
    diagnostics.py     a round's probes scored again by other models (its Stage II model, Stage I checkpoints)
"""
