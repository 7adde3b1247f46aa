"""SALAD Stage II: active selection of synthetic speech where the Stage I model is still misaligned.

One module per step of a round (`round.run_round`, the `salad select` command):

    embed.py        sentence embeddings of the broad text corpus (all-MiniLM-L6-v2 offline by default)
    clustering.py   balanced k-means (every cluster within ±10 % of N/K)
    speech.py       texts spoken as interleaved documents (one TTS voice), frames cached in the round's folder
    probing.py      per-cluster misalignment M(c) of the model on spoken probes, and their intelligibility (ASR CER)
    allocation.py   P_target(c) ∝ P_web(c) · M(c)^γ and the seeded draw of texts
    round.py        the round end to end, its record in the store, and `SelectedSpeech` for Stage II training
    report.py       rounds, budget allocation and Stage I vs Stage II per task, from the store
"""
