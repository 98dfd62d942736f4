"""Train the span reader (``make train-reader``) on the tune half of SQuAD v1.1 dev.

``python -m retrieval.training [--data ../shared/data/squad-dev-tune.json]
[--out retrieval/reader] [--epochs 3] [--max-minutes 80]``

* The tune file is split by article: ~90 % of its articles train, the rest
  (2-3 articles, chosen by a fixed seed) validate. Nothing else is read, unless
  ``--same-topic`` names the SQuAD 2.0 tune file: then its unanswerable questions
  (except those of articles kept out for ``make calibrate``) also point at [CLS].
* Features: question + paragraph windows (max_length 384, stride 128,
  ``truncation="only_second"``); a window without the answer points at [CLS].
  For ~30 % of the questions the question is also paired with a different
  paragraph of the same article (answer -> [CLS]) as a hard negative.
* Model: transformers' ``BertForQuestionAnswering`` over the packaged
  all-MiniLM-L6-v2 (a ``Linear(384, 2)`` head); the word
  embeddings stay frozen, everything else trains (AdamW, linear warmup/decay), in
  fp32 unless ``--precision`` says bf16 autocast.
  Batches are grouped by length and padded to their longest window.
* Stops after ``--epochs`` or ``--max-minutes`` of training, whichever comes
  first (the decay schedule shrinks to the steps that fit the time budget).
  A checkpoint (resumable with ``--resume``) is written atomically every
  ``--checkpoint-minutes`` to ``--checkpoint-dir``.
* Then: exact match / F1 on the validation articles with the gold paragraph
  given, and ``reader.safetensors`` (changed params, float16) + ``reader.json``
  are written to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.bench import exact_match, f1_score, squad_articles, squad_title
from retrieval.bench.natural import NaturalQuestion, load_natural
from retrieval.embedding import MINILM_NAME
from retrieval.reader import META_FILE, WEIGHTS_DIR, WEIGHTS_FILE, SpanReader, window_tokenizer
from retrieval.runtime import FROZEN_PREFIXES, load_reader_state
from retrieval.store import atomic_write_text

# --- the torch model (training only: the product runs the exported graph) ------------------


def build_model(init: str | Path | None = None) -> Any:
    """transformers' BERT with a start/end head over the packaged weights, fp32.

    `init`: a folder of shipped reader weights to start from; otherwise the head is new.
    Called positionally ``model(input_ids, attention_mask, token_type_ids)`` it gives
    ``(start_logits, end_logits)``.
    """
    from transformers import BertForQuestionAnswering
    from transformers.utils import logging as hf_logging

    from retrieval.minilm import model_path

    hf_logging.set_verbosity_error()  # "newly initialized: qa_outputs" is the point
    model = BertForQuestionAnswering.from_pretrained(str(model_path()))
    model.config.return_dict = False
    if init is not None:
        load_reader_state(model, Path(init) / WEIGHTS_FILE)
    return model.eval()


class TorchLogits:
    """A torch reader model called like the exported graph: numpy in, numpy out."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        import torch

        with torch.inference_mode():
            start, end = self.model(*(torch.from_numpy(a) for a in
                                      (input_ids, attention_mask, token_type_ids)))  # fmt: skip
        return start.float().numpy(), end.float().numpy()


def trainable_state(model: Any) -> dict[str, Any]:
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


DEFAULT_DATA = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / ("squad-dev-tune.json")
)
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "build" / "reader-checkpoint"
DEFAULT_SAME_TOPIC = DEFAULT_DATA.with_name("squad2-dev-tune.json")
SPLIT_SEED = 20240501
# Impossible SQuAD 2.0 tune questions kept away from training, whole articles at a time, so
# that `make calibrate` measures the same-topic case on questions the reader never saw.
SAME_TOPIC_HELD_OUT = 800
VALIDATION_ARTICLES = 3
VALIDATION_MAX_SHARE = 0.12


# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    qid: str
    question: str
    context: str
    answer_start: int  # -1: no answer in this context (a hard negative)
    answer_text: str
    answers: tuple[str, ...]


def load_articles(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)["data"]


def split_articles(
    articles: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deterministic split by article: (train, validation) with 2-3 validation articles."""
    total = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    order = sorted(range(len(articles)), key=lambda i: articles[i]["title"])
    random.Random(SPLIT_SEED).shuffle(order)
    val: list[int] = []
    val_q = 0
    for i in order:
        n = sum(len(p["qas"]) for p in articles[i]["paragraphs"])
        if val_q + n > VALIDATION_MAX_SHARE * total:
            continue
        val.append(i)
        val_q += n
        if len(val) == VALIDATION_ARTICLES:
            break
    val_set = set(val)
    return (
        [a for i, a in enumerate(articles) if i not in val_set],
        [articles[i] for i in sorted(val_set)],
    )


def impossible_count(article: dict[str, Any]) -> int:
    return sum(bool(qa.get("is_impossible")) for p in article["paragraphs"] for qa in p["qas"])


def split_same_topic(
    articles: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out) SQuAD 2.0 articles; the held-out ones hold >= SAME_TOPIC_HELD_OUT
    impossible questions (or every article, if they hold fewer)."""
    order = sorted(range(len(articles)), key=lambda i: articles[i]["title"])
    random.Random(SPLIT_SEED).shuffle(order)
    held: set[int] = set()
    count = 0
    for i in order:
        if count >= SAME_TOPIC_HELD_OUT:
            break
        held.add(i)
        count += impossible_count(articles[i])
    return (
        [a for i, a in enumerate(articles) if i not in held],
        [a for i, a in enumerate(articles) if i in held],
    )


def impossible_examples(articles: list[dict[str, Any]]) -> list[Example]:
    """SQuAD 2.0's unanswerable questions with their paragraph: the answer is [CLS].

    They are written to look answerable from that very paragraph, so they teach the
    reader's null score the case retrieval cannot tell apart (the same topic).
    """
    return [
        Example(qa["id"], qa["question"], para["context"], -1, "", ())
        for article in articles
        for para in article["paragraphs"]
        for qa in para["qas"]
        if qa.get("is_impossible")
    ]


def examples(
    articles: list[dict[str, Any]], *, negatives: float = 0.0, seed: int = 0
) -> list[Example]:
    """One example per question (first gold answer), plus hard negatives at rate `negatives`."""
    rng = random.Random(seed)
    out: list[Example] = []
    for article in articles:
        paragraphs = article["paragraphs"]
        for pi, para in enumerate(paragraphs):
            context = para["context"]
            for qa in para["qas"]:
                gold = tuple(a["text"] for a in qa["answers"])
                first = qa["answers"][0]
                out.append(
                    Example(
                        qa["id"],
                        qa["question"],
                        context,
                        first["answer_start"],
                        first["text"],
                        gold,
                    )
                )
                if len(paragraphs) > 1 and rng.random() < negatives:
                    other = rng.randrange(len(paragraphs) - 1)
                    other += other >= pi
                    out.append(
                        Example(
                            qa["id"] + "/neg",
                            qa["question"],
                            paragraphs[other]["context"],
                            -1,
                            "",
                            gold,
                        )
                    )
    return out


def drop_copied_words(exs: Sequence[Example], rate: float, seed: int = 0) -> list[Example]:
    """Extra examples whose question lost words it copied from the answer's sentence.

    SQuAD questions copy their sentence's words, so a reader learns to match words;
    people ask in their own. For a share `rate` of the answerable examples, a copy of
    the question drops each content word that also occurs in the answer's sentence with
    probability one half (at least one), so the reader learns to point at the answer
    from what is left (word dropping, after Shinoda et al. 2021).
    """
    from retrieval.text import STOPWORDS, sentence_spans, stem, words

    rng = random.Random(seed)
    out: list[Example] = []
    for ex in exs:
        if ex.answer_start < 0 or rng.random() >= rate:
            continue
        sentence = next(
            (ex.context[a:b] for a, b in sentence_spans(ex.context) if a <= ex.answer_start < b),
            "",
        )
        present = {stem(w) for w in words(sentence)}
        tokens = ex.question.rstrip(" ?").split()
        copied = [
            i for i, t in enumerate(tokens)
            if (w := words(t)) and w[0].lower() not in STOPWORDS and stem(w[0]) in present
        ]  # fmt: skip
        if not copied:
            continue
        dropped = {i for i in copied if rng.random() < 0.5} or {rng.choice(copied)}
        question = " ".join(t for i, t in enumerate(tokens) if i not in dropped) + "?"
        if len(question) > 1:
            out.append(Example(ex.qid + "/drop", question, ex.context, ex.answer_start,
                               ex.answer_text, ex.answers))  # fmt: skip
    return out


def natural_examples(
    articles: Sequence[dict[str, Any]],
    questions: Sequence[NaturalQuestion],
    embed: Callable[[list[str]], np.ndarray],
) -> list[Example]:
    """The natural set's questions as examples over their articles' SQuAD paragraphs.

    The set gives answer strings, not places: of every paragraph sentence that holds one
    of a question's answers, the one whose embedding is nearest the question's is taken
    as the answer's place. A question its article does not answer points at [CLS] in
    the paragraph nearest it, which teaches the null score questions in other words.
    """
    from retrieval.bench.natural import sentence_of

    by_title = {a["title"]: a for a in articles}
    out: list[Example] = []
    for q in questions:
        article = by_title.get(q.article)
        if article is None:
            continue
        contexts = [p["context"] for p in article["paragraphs"]]
        places = [
            (context, m.start(), answer)
            for context in contexts
            for answer in q.answers
            for m in re.finditer(re.escape(answer), context)
        ]
        if q.answers and not places:
            continue
        if q.answers:
            texts = [c[slice(*sentence_of(c, start))] for c, start, _ in places]
        else:
            texts = contexts
        vectors = embed([q.text, *texts])
        best = int(np.argmax(vectors[1:] @ vectors[0]))
        if q.answers:
            context, start, answer = places[best]
            out.append(Example(q.id, q.text, context, start, answer, q.answers))
        else:
            out.append(Example(q.id, q.text, contexts[best], -1, "", ()))
    return out


def featurize(tokenizer: Any, exs: Sequence[Example]) -> list[dict[str, Any]]:
    """Training windows: input ids, token types and start/end token labels (0 = [CLS]).

    `tokenizer` is the reader's (``window_tokenizer(max_length, stride)``), so training
    sees the windows the reader reads.
    """
    from retrieval.minilm import pair_windows

    feats: list[dict[str, Any]] = []
    batch = 256
    for b in range(0, len(exs), batch):
        chunk = exs[b : b + batch]
        windows = pair_windows(tokenizer, [(e.question, e.context) for e in chunk])
        for w, sample in enumerate(windows.sample.tolist()):
            ex = chunk[sample]
            n = int(windows.attention_mask[w].sum())
            offsets = windows.offsets[w]
            start_pos = end_pos = 0
            if ex.answer_start >= 0:
                a = ex.answer_start
                z = a + len(ex.answer_text)
                ctx = np.flatnonzero(windows.context[w]).tolist()
                if ctx and offsets[ctx[0]][0] <= a and offsets[ctx[-1]][1] >= z:
                    i = ctx[0]
                    while i <= ctx[-1] and offsets[i][1] <= a:
                        i += 1
                    j = ctx[-1]
                    while j >= ctx[0] and offsets[j][0] >= z:
                        j -= 1
                    if i <= j:
                        start_pos, end_pos = i, j
            feats.append(
                {
                    "input_ids": windows.input_ids[w, :n].tolist(),
                    "token_type_ids": windows.token_type_ids[w, :n].tolist(),
                    "start": start_pos,
                    "end": end_pos,
                }
            )
    return feats


def batches_for_epoch(
    feats: list[dict[str, Any]], batch_size: int, epoch: int, seed: int
) -> list[list[int]]:
    """Length-grouped batches: shuffle, sort within mega-batches by length, shuffle batches."""
    rng = random.Random(seed * 1000 + epoch)
    idx = list(range(len(feats)))
    rng.shuffle(idx)
    mega = batch_size * 50
    batches: list[list[int]] = []
    for m in range(0, len(idx), mega):
        group = sorted(idx[m : m + mega], key=lambda i: len(feats[i]["input_ids"]))
        batches.extend(group[k : k + batch_size] for k in range(0, len(group), batch_size))
    rng.shuffle(batches)
    return batches


def collate(feats: list[dict[str, Any]], ids: list[int], pad_id: int) -> dict[str, Any]:
    import torch

    rows = [feats[i] for i in ids]
    width = max(len(r["input_ids"]) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, r in enumerate(rows):
        n = len(r["input_ids"])
        input_ids[k, :n] = torch.tensor(r["input_ids"])
        types[k, :n] = torch.tensor(r["token_type_ids"])
        mask[k, :n] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": types,
        "attention_mask": mask,
        "start": torch.tensor([r["start"] for r in rows]),
        "end": torch.tensor([r["end"] for r in rows]),
    }


def evaluate(reader: SpanReader, exs: Sequence[Example]) -> dict[str, float]:
    """Closed-setting EM / F1 (%) : the gold paragraph is given, the best span is the answer."""
    em = f1 = 0.0
    for ex in exs:
        pred = reader.read(ex.question, [ex.context])[0].text
        em += exact_match(pred, ex.answers)
        f1 += f1_score(pred, ex.answers)
    n = max(len(exs), 1)
    return {"exact_match": round(100 * em / n, 2), "f1": round(100 * f1 / n, 2), "n": len(exs)}


# --- training -------------------------------------------------------------------------------


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def training_precision(requested: str) -> str:
    """The precision to train in, "bf16" or "fp32"; for "auto", bf16 where the CPU has native
    bfloat16 (AVX512-BF16 or AMX)."""
    if requested != "auto":
        return requested
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return "fp32"
    return "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "fp32"


def natural_training_set(
    data: Path, train_articles: Sequence[dict[str, Any]]
) -> tuple[list[Example], list[str]]:
    """The natural set's fitted questions over the training articles that calibration's
    part B holds (it never indexes them), as examples; and those articles' titles."""
    from retrieval.calibrate import split_parts
    from retrieval.embedding import MiniLMEmbedder

    natural = load_natural(split="fit")
    _, part_b = split_parts(squad_articles([data])[0], data.with_name(DEFAULT_SAME_TOPIC.name),
                            load_natural())  # fmt: skip
    allowed = {squad_title(a) for a in part_b} & {a["title"] for a in train_articles}
    chosen = [q for q in natural if q.collection == "squad-tune" and q.article in allowed]
    embedder = MiniLMEmbedder()
    return (
        natural_examples(
            [a for a in train_articles if a["title"] in allowed], chosen, embedder.embed
        ),  # fmt: skip
        sorted(allowed),
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m retrieval.training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", default=str(DEFAULT_DATA), help="SQuAD v1.1 json (the tune half)")
    p.add_argument(
        "--same-topic",
        default="",
        metavar="FILE",
        help="also train the null score on the unanswerable questions of this SQuAD 2.0 tune "
        f"json (e.g. {DEFAULT_SAME_TOPIC.name}); articles holding {SAME_TOPIC_HELD_OUT} of them "
        "are kept out for `make calibrate`. Off by default: it did not help (see README)",
    )
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="where reader.safetensors goes")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--max-minutes", type=float, default=80.0, help="training time budget")
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--accumulate", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=0.1, help="warmup share of the steps")
    p.add_argument("--negatives", type=float, default=0.3, help="hard-negative rate")
    p.add_argument(
        "--drop-words",
        type=float,
        default=0.0,
        metavar="RATE",
        help="add, for this share of the questions, a copy without some of the words it "
        "copied from the answer's sentence",
    )
    p.add_argument(
        "--natural",
        type=int,
        default=0,
        metavar="TIMES",
        help="also train on the natural set's questions (in a reader's own words) over the "
        "articles `make calibrate` does not index, each TIMES over; the held-out part "
        "and the questions calibration fits on stay unseen",
    )
    p.add_argument(
        "--init",
        default="",
        metavar="DIR",
        help="start from the reader weights in DIR (e.g. retrieval/reader) instead of the "
        "packaged model",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="fp32",
        help="bf16: autocast the forward pass (about 10%% faster on a CPU with native bf16, "
        "slightly different weights); auto: bf16 where the CPU has it. The shipped weights "
        "are fp32",
    )
    p.add_argument("--checkpoint-dir", default=str(DEFAULT_CHECKPOINT_DIR))
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    p.add_argument("--max-steps", type=int, default=0, help="stop after N steps (timing runs)")
    p.add_argument("--no-save", action="store_true", help="do not write --out (timing runs)")
    p.add_argument("--no-eval", action="store_true", help="skip the validation evaluation")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from tqdm import tqdm

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)

    data = Path(args.data)
    if not data.is_file():
        print(f"training data not found: {data}", file=sys.stderr)
        return 2
    articles = load_articles(data)
    train_articles, val_articles = split_articles(articles)
    tokenizer = window_tokenizer(args.max_length, args.stride)
    train_ex = examples(train_articles, negatives=args.negatives, seed=args.seed)
    train_ex += drop_copied_words(train_ex, args.drop_words, seed=args.seed)
    val_ex = examples(val_articles)
    same_topic_articles: list[str] = []
    if args.same_topic:
        same_topic = Path(args.same_topic)
        if not same_topic.is_file():
            print(f"--same-topic: SQuAD 2.0 data not found: {same_topic}", file=sys.stderr)
            return 2
        validation = {a["title"] for a in val_articles}
        trained, _ = split_same_topic(load_articles(same_topic))
        trained = [a for a in trained if a["title"] not in validation]
        same_topic_articles = [a["title"] for a in trained]
        train_ex += impossible_examples(trained)
    natural_articles: list[str] = []
    if args.natural:
        natural, natural_articles = natural_training_set(data, train_articles)
        train_ex += natural * args.natural
        print(f"natural set: {len(natural)} questions over {len(natural_articles)} articles, "
              f"each {args.natural} times", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    feats = featurize(tokenizer, train_ex)
    n_q = sum(1 for e in train_ex if e.answer_start >= 0)
    n_null = sum(1 for f in feats if f["start"] == 0)
    print(
        f"train: {len(train_articles)} articles, {n_q} questions, "
        f"{len(train_ex) - n_q} hard negatives (SQuAD 2.0 unanswerable from "
        f"{len(same_topic_articles)} articles among them) -> {len(feats)} windows "
        f"({n_null} pointing at [CLS]); validation: "
        f"{', '.join(a['title'] for a in val_articles)} ({len(val_ex)} questions); "
        f"featurized in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )

    bf16 = training_precision(args.precision) == "bf16"
    print(f"precision: {'bf16 autocast' if bf16 else 'fp32'}", flush=True)
    model = build_model(args.init)
    model.train()
    for name, param in model.named_parameters():
        param.requires_grad = not name.startswith(FROZEN_PREFIXES)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
    )

    per_epoch = math.ceil(
        len(batches_for_epoch(feats, args.batch_size, 0, args.seed)) / args.accumulate
    )
    planned = max(1, math.ceil(per_epoch * args.epochs))
    if args.max_steps:
        planned = min(planned, args.max_steps)
    warmup = max(1, int(args.warmup * planned))
    schedule = {"total": planned}

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        total = max(schedule["total"], warmup + 1)
        return max(0.0, (total - step) / (total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)

    step = 0
    spent = 0.0  # training seconds, across resumes
    ckpt_dir = Path(args.checkpoint_dir)
    state_path = ckpt_dir / "state.pt"
    if args.resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        step, spent = state["step"], state["spent"]
        schedule["total"] = state["schedule_total"]
        scheduler.last_epoch = step - 1
        scheduler.step()
        print(f"resumed at step {step} ({spent / 60:.1f} min trained)", flush=True)

    def meta(extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "base_model": MINILM_NAME,
            "max_length": args.max_length,
            "stride": args.stride,
            "steps": step,
            "planned_steps": schedule["total"],
            "epochs_done": round(step / per_epoch, 3),
            "train_minutes": round(spent / 60, 2),
            "batch_size": args.batch_size * args.accumulate,
            "lr": args.lr,
            "hard_negative_rate": args.negatives,
            "drop_words_rate": args.drop_words,
            "init": str(args.init) or "packaged model",
            "same_topic_articles": same_topic_articles,
            "natural_articles": natural_articles,
            "natural_times": args.natural,
            "precision": "bf16 autocast" if bf16 else "fp32",
            "train_articles": len(train_articles),
            "train_windows": len(feats),
            "validation_articles": [a["title"] for a in val_articles],
            "data": data.name,
            "frozen": list(FROZEN_PREFIXES),
            "dtype": "float16",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **extra,
        }

    def checkpoint() -> None:
        _atomic_torch_save(
            {
                "model": {k: v.clone() for k, v in trainable_state(model).items()},
                "optimizer": optimizer.state_dict(),
                "step": step,
                "spent": spent,
                "schedule_total": schedule["total"],
            },
            state_path,
        )
        save_weights(model, ckpt_dir, meta({"partial": True}))

    budget = args.max_minutes * 60
    model.train()
    pad_id = 0  # [PAD]
    loss_fn = torch.nn.CrossEntropyLoss()
    last_ckpt = time.perf_counter()
    ema: float | None = None
    recent: list[float] = []  # recent step times
    bar = tqdm(
        total=schedule["total"],
        initial=step,
        desc="train reader",
        unit="step",
        dynamic_ncols=True,
        mininterval=2.0,
    )
    while step < schedule["total"]:
        epoch = step // per_epoch
        batches = batches_for_epoch(feats, args.batch_size, epoch, args.seed)
        groups = [batches[k : k + args.accumulate] for k in range(0, len(batches), args.accumulate)]
        for group in groups[step - epoch * per_epoch :]:
            if step >= schedule["total"]:
                break
            if spent >= budget:
                break
            t_step = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            total_loss = 0.0
            for ids in group:
                b = collate(feats, ids, pad_id)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    start, end = model(b["input_ids"], b["attention_mask"], b["token_type_ids"])
                start, end = start.float(), end.float()
                loss = (loss_fn(start, b["start"]) + loss_fn(end, b["end"])) / 2
                (loss / len(group)).backward()
                total_loss += loss.item() / len(group)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            spent += time.perf_counter() - t_step
            ema = total_loss if ema is None else 0.95 * ema + 0.05 * total_loss
            # fit the decay schedule to the steps the time budget still allows, at the
            # recent pace (other load on the machine comes and goes)
            recent.append(time.perf_counter() - t_step)
            if len(recent) >= 20 and step % 10 == 0:
                pace = sum(recent[-40:]) / len(recent[-40:])
                fits = min(planned, max(step + 1, step + int((budget - spent) / pace)))
                if abs(fits - schedule["total"]) > 0.02 * schedule["total"]:
                    schedule["total"] = fits
                    bar.total = fits
                    bar.refresh()
            bar.set_postfix(
                loss=f"{ema:.3f}",
                lr=f"{scheduler.get_last_lr()[0]:.1e}",
                epoch=f"{step / per_epoch:.2f}",
                min=f"{spent / 60:.1f}",
            )
            bar.update(1)
            if time.perf_counter() - last_ckpt >= args.checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = time.perf_counter()
        else:
            continue
        break
    bar.close()
    stop_reason = "epochs" if step >= planned else "time"
    print(
        f"trained {step} steps ({step / per_epoch:.2f} epochs, stopped by {stop_reason}) "
        f"in {spent / 60:.1f} min, {spent / max(step, 1):.2f} s/step",
        flush=True,
    )
    if args.max_steps and args.no_save:
        return 0
    checkpoint()

    model.eval()
    scores: dict[str, Any] = {}
    if not args.no_eval:
        t_eval = time.perf_counter()
        reader = SpanReader(TorchLogits(model), max_length=args.max_length, stride=args.stride)
        scores = evaluate(reader, val_ex)
        print(
            f"validation (closed setting, {scores['n']} questions): "
            f"EM {scores['exact_match']:.2f}  F1 {scores['f1']:.2f} "
            f"({time.perf_counter() - t_eval:.0f}s)",
            flush=True,
        )
    if not args.no_save:
        out = save_weights(
            model,
            args.out,
            meta({"partial": False, "stopped_by": stop_reason, "validation": scores}),
        )
        print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
