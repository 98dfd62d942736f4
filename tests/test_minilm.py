"""Tests of retrieval.minilm: our BERT forward pass and windows match transformers'.

The reader was trained on transformers' windows and the index was built with the
packaged model's vectors, so both must be reproduced exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

QUESTION = "Who chaired the committee?"
PASSAGES = [
    "The committee, chaired by Ana Reyes, met in the old town hall. " * 30,
    "Short.",
    "Café owners in Zürich said the “new” rules were unclear.",
]


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoModel, AutoTokenizer

    from retrieval.minilm import model_path

    path = str(model_path())
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def test_encoder_gives_the_hidden_states_of_transformers(reference):
    import torch

    from retrieval.minilm import encode_texts, load_encoder, load_tokenizer

    tokenizer, model = reference
    texts = [QUESTION, *PASSAGES]
    theirs_in = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    ids, mask, types = encode_texts(load_tokenizer(256), texts)
    assert torch.equal(ids, theirs_in["input_ids"])
    assert torch.equal(mask, theirs_in["attention_mask"])
    with torch.inference_mode():
        theirs = model(**theirs_in).last_hidden_state
        ours = load_encoder()(ids, mask, types)
    keep = mask.bool()
    assert (ours - theirs)[keep].abs().max() < 1e-4


def test_pair_windows_are_the_windows_transformers_makes(reference):
    from retrieval.minilm import load_tokenizer, pair_windows

    tokenizer, _ = reference
    theirs = tokenizer(
        [QUESTION] * len(PASSAGES),
        PASSAGES,
        truncation="only_second",
        max_length=96,
        stride=24,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="longest",
        return_tensors="np",
    )
    ours = pair_windows(
        load_tokenizer(96, 24, pair_truncation=True), [(QUESTION, p) for p in PASSAGES]
    )
    assert len(ours.sample) > len(PASSAGES)  # the long passage was cut into windows
    assert np.array_equal(ours.sample, theirs["overflow_to_sample_mapping"])
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        assert np.array_equal(getattr(ours, name), theirs[name]), name
    context = np.array([[s == 1 for s in theirs.sequence_ids(w)] for w in range(len(ours.sample))])
    assert np.array_equal(ours.context, context)
    assert np.array_equal(ours.offsets[context], theirs["offset_mapping"][context])
    assert not ours.offsets[~context].any()
