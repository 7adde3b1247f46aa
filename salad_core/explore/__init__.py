"""The misalignment explorer's library: where text and speech views of the same content part inside the model.

    sources          models of the store (and checkpoints) as `ModelRef`s; paired item sets (world or evaluation)
    representations  hidden states of every layer for paired items, the aligned KL and both lanes' answers
    cache            the on-disk cache of those, one file per layer, keyed by (model weights, item set)
    metrics          per-layer pair cosine, norm ratio, modality gap, linear CKA; per-item KL
    projection       one seeded UMAP over every view shown (salad_core.maps), cached

Only `representations` imports torch; the dashboard page uses the rest.
"""
