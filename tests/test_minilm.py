"""Tests of retrieval.minilm: our inputs and windows match the ones transformers makes.

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
    from transformers import AutoTokenizer

    from retrieval.minilm import model_path

    return AutoTokenizer.from_pretrained(str(model_path())), None


def test_encode_texts_gives_the_inputs_transformers_makes(reference):
    from retrieval.minilm import encode_texts, load_tokenizer

    tokenizer, _ = reference
    texts = [QUESTION, *PASSAGES]
    theirs = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="np")
    ids, mask, types = encode_texts(load_tokenizer(256), texts)
    assert np.array_equal(ids, theirs["input_ids"])
    assert np.array_equal(mask, theirs["attention_mask"])
    assert np.array_equal(types, theirs["token_type_ids"])


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
