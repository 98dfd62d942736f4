"""Tests of retrieval.reader (span decoding, windows, weights) and retrieval.training helpers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from retrieval.reader import (
    PADDED_LOGIT,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    ReadSpan,
    SpanReader,
    best_span,
)
from retrieval.training import (
    examples,
    impossible_count,
    impossible_examples,
    split_articles,
    split_same_topic,
    training_precision,
)

# --- best_span: hand-computed cases ---------------------------------------------------------

# token 0 = [CLS], 1-2 = question, 3 = [SEP], 4-8 = passage "aa bb cc dd ee", 9 = [SEP]
OFFSETS = [(0, 0), (0, 3), (4, 7), (0, 0), (0, 2), (3, 5), (6, 8), (9, 11), (12, 14), (0, 0)]
CONTEXT = [False, False, False, False, True, True, True, True, True, False]


def _logits(**values: float) -> np.ndarray:
    out = np.zeros(len(OFFSETS))
    for key, val in values.items():
        out[int(key[1:])] = val
    return out


def test_best_span_takes_the_highest_start_plus_end():
    start = _logits(t5=3.0, t6=1.0)
    end = _logits(t6=2.0, t7=2.5)
    # candidates: (5,6)=5.0, (5,7)=5.5, (6,7)=3.5 -> (5, 7)
    assert best_span(start, end, OFFSETS, CONTEXT, 30) == (5, 7, 5.5)


def test_best_span_never_ends_before_it_starts():
    start = _logits(t7=5.0, t4=1.0)
    end = _logits(t5=5.0, t7=0.5)
    # (7,5) would be 10 but is invalid; (4,5)=6.0 beats (7,7)=5.5
    assert best_span(start, end, OFFSETS, CONTEXT, 30) == (4, 5, 6.0)


def test_best_span_respects_the_length_limit():
    start = _logits(t4=4.0)
    end = _logits(t8=4.0, t5=1.0)
    assert best_span(start, end, OFFSETS, CONTEXT, 30) == (4, 8, 8.0)
    # at most 2 tokens: (4,8) is 5 tokens long; best is (4,5)=5.0
    assert best_span(start, end, OFFSETS, CONTEXT, 2) == (4, 5, 5.0)
    # one token: start == end; (4,4)=4.0 beats (8,8)=4.0 by coming first
    assert best_span(start, end, OFFSETS, CONTEXT, 1) == (4, 4, 4.0)


def test_best_span_stays_inside_the_passage():
    # huge logits on [CLS], the question and [SEP] are ignored
    start = _logits(t0=50.0, t1=40.0, t4=1.0, t9=60.0)
    end = _logits(t0=50.0, t2=40.0, t6=1.0, t9=60.0)
    assert best_span(start, end, OFFSETS, CONTEXT, 30) == (4, 6, 2.0)


def test_best_span_skips_tokens_with_empty_offsets_and_handles_no_context():
    offsets = list(OFFSETS)
    offsets[5] = (5, 5)
    start = _logits(t5=9.0, t6=1.0)
    end = _logits(t5=9.0, t6=1.0)
    assert best_span(start, end, offsets, CONTEXT, 30) == (6, 6, 2.0)
    assert best_span(start, end, OFFSETS, [False] * len(OFFSETS), 30) is None
    assert best_span([], [], [], [], 30) is None


def test_best_span_stays_inside_one_sentence_when_given_them():
    # "aa bb" is one sentence, "cc dd ee" the next: the best pair (bb..cc) crosses.
    start, end = _logits(t5=5.0, t4=1.0), _logits(t6=5.0, t8=2.0)
    assert best_span(start, end, OFFSETS, CONTEXT, 30)[:2] == (5, 6)
    sentences = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert best_span(start, end, OFFSETS, CONTEXT, 30, sentences)[:2] == (5, 5)


def test_best_span_prefers_earliest_then_shortest_on_ties():
    start = np.zeros(len(OFFSETS))
    end = np.zeros(len(OFFSETS))
    assert best_span(start, end, OFFSETS, CONTEXT, 30) == (4, 4, 0.0)


# --- SpanReader.read with a stand-in model: windows and character offsets --------------------


class _PointAt:
    """A stand-in model whose logits peak on the tokens of `word` (start on its first piece)."""

    def __init__(self, tokenizer, word: str, null: float = 0.0) -> None:
        self.ids = tokenizer.encode(word, add_special_tokens=False).ids
        self.null = null

    def __call__(self, input_ids, attention_mask, token_type_ids):
        start = np.zeros(input_ids.shape, dtype=np.float32)
        end = np.zeros(input_ids.shape, dtype=np.float32)
        n = len(self.ids)
        for row in range(input_ids.shape[0]):
            seq = input_ids[row].tolist()
            for i in range(len(seq) - n + 1):
                if seq[i : i + n] == self.ids and token_type_ids[row, i] == 1:
                    start[row, i] = 5.0
                    end[row, i + n - 1] = 4.0
            start[row, 0] = end[row, 0] = self.null / 2
        return start, end


@pytest.fixture(scope="module")
def tokenizer():
    from retrieval.minilm import load_tokenizer

    return load_tokenizer()


def test_read_maps_spans_to_character_offsets_per_passage(tokenizer):
    passages = [
        "The ferry left the harbour at dawn.",
        "",
        "Captain Ilse Marwood steered the ferry through the fog to Kestrel Island.",
    ]
    reader = SpanReader(_PointAt(tokenizer, "Marwood"))
    spans = reader.read("Who steered the ferry?", passages)
    assert [s.passage for s in spans] == [0, 1, 2]
    third = spans[2]
    assert third.text == "Marwood" == passages[2][third.start : third.end]
    assert third.score == pytest.approx(9.0)
    assert third.null_score == pytest.approx(0.0)
    assert spans[1] == ReadSpan(1, 0, 0, "", -math.inf, 0.0)
    assert spans[0].score < third.score
    assert reader.read("Who?", []) == []


def test_read_never_runs_a_span_across_a_sentence_end(tokenizer):
    passage = "The probe flew about 640 million kilometers. That is farther than before."

    class Across(_PointAt):
        def __call__(self, input_ids, attention_mask, token_type_ids):
            start, end = super().__call__(input_ids, attention_mask, token_type_ids)
            ids = input_ids[0].tolist()
            end[0, ids.index(self.that)] = 6.0  # "That", in the next sentence
            return start, end

    model = Across(tokenizer, "about 640 million kilometers")
    model.that = tokenizer.encode("That", add_special_tokens=False).ids[0]
    reader = SpanReader(model)
    reader.within_sentences = False
    (free,) = reader.read("How far did the probe fly?", [passage])
    assert free.text == "about 640 million kilometers. That"
    reader.within_sentences = True
    (bounded,) = reader.read("How far did the probe fly?", [passage])
    assert bounded.text == "about 640 million kilometers"


def test_span_probability_is_shared_across_the_passages_read(tokenizer):
    passage = "Captain Ilse Marwood steered the ferry through the fog."
    reader = SpanReader(_PointAt(tokenizer, "Marwood"))
    (alone,) = reader.read("Who steered the ferry?", [passage])
    first, second = reader.read("Who steered the ferry?", [passage, passage])
    assert 0.0 < alone.probability < 1.0
    assert first.probability == pytest.approx(second.probability)
    # A second passage pointing at the same words takes its share of the mass.
    assert first.probability < alone.probability
    assert first.probability + second.probability <= 1.0


def test_read_finds_the_answer_in_a_later_window_of_a_long_passage(tokenizer):
    filler = " ".join(f"Sentence {i} is about nothing in particular." for i in range(80))
    passage = filler + " The lighthouse was built by Tomasz Reyes."
    reader = SpanReader(_PointAt(tokenizer, "Reyes"), max_length=128, stride=32)
    enc = reader.encode("Who built the lighthouse?", [passage])
    assert enc.input_ids.shape[0] > 3  # read in several windows, one forward pass
    (span,) = reader.read("Who built the lighthouse?", [passage])
    assert span.text == "Reyes"
    assert passage[span.start : span.end] == "Reyes"


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown reader variant 'fp8'; choose one of"):
        SpanReader.load(variant="fp8")


def test_load_without_weights_says_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match="make train-reader"):
        SpanReader.load(tmp_path)


# --- training helpers -----------------------------------------------------------------------


def _article(title: str, n_paragraphs: int, n_questions: int) -> dict:
    paragraphs = []
    for p in range(n_paragraphs):
        context = f"Paragraph {p} of {title} mentions the number {p * 7}."
        qas = [
            {
                "id": f"{title}-{p}-{q}",
                "question": f"Which number does paragraph {p} mention?",
                "answers": [{"text": str(p * 7), "answer_start": context.index(str(p * 7))}],
            }
            for q in range(n_questions)
        ]
        paragraphs.append({"context": context, "qas": qas})
    return {"title": title, "paragraphs": paragraphs}


def test_split_is_by_article_deterministic_and_small():
    arts = [_article(f"A{i}", 3, 2) for i in range(24)]
    train, val = split_articles(arts)
    assert 2 <= len(val) <= 3
    assert len(train) + len(val) == 24
    assert not {a["title"] for a in train} & {a["title"] for a in val}
    again_train, again_val = split_articles(list(arts))
    assert [a["title"] for a in again_val] == [a["title"] for a in val]


def test_hard_negatives_pair_the_question_with_another_paragraph():
    art = _article("B", 4, 5)
    exs = examples([art], negatives=1.0, seed=3)
    pos = [e for e in exs if e.answer_start >= 0]
    neg = [e for e in exs if e.answer_start < 0]
    assert len(pos) == len(neg) == 20
    for e in pos:
        assert e.context[e.answer_start :].startswith(e.answer_text)
    for e in neg:
        owner = e.qid.removesuffix("/neg").split("-")[1]
        assert e.context != art["paragraphs"][int(owner)]["context"]
        assert e.answer_text == ""
    assert examples([art], negatives=0.0) == pos


def test_dropped_word_copies_lose_only_words_copied_from_the_answer_sentence():
    from retrieval.training import Example, drop_copied_words

    context = "The ferry sails at dawn. Captain Alma Reyes steers the ferry every day."
    question = "Who steers the ferry every day?"
    start = context.index("Alma")
    exs = [Example(f"q{i}", question, context, start, "Alma Reyes", ("Alma Reyes",))
           for i in range(20)] + [Example("n", question, context, -1, "", ())]  # fmt: skip
    copies = drop_copied_words(exs, rate=1.0, seed=0)
    assert len(copies) == 20  # every answerable example, never the negative
    for copy in copies:
        kept = copy.question.rstrip("?").split()
        assert copy.qid.endswith("/drop") and copy.question.endswith("?")
        assert kept[0] == "Who" and "the" in kept  # stopwords stay
        assert len(kept) < len(question.split())  # at least one copied word is gone
        assert (copy.context, copy.answer_start, copy.answer_text) == (context, start, "Alma Reyes")
    assert drop_copied_words(exs, rate=0.0) == []


def _with_impossible(article: dict, per_paragraph: int) -> dict:
    """A SQuAD 2.0-style copy: `per_paragraph` unanswerable questions added to each paragraph."""
    paragraphs = []
    for p, para in enumerate(article["paragraphs"]):
        extra = [
            {
                "id": f"{article['title']}-{p}-x{k}",
                "question": f"Which colour does paragraph {p} mention?",
                "answers": [],
                "is_impossible": True,
            }
            for k in range(per_paragraph)
        ]
        paragraphs.append({"context": para["context"], "qas": para["qas"] + extra})
    return {"title": article["title"], "paragraphs": paragraphs}


def test_impossible_questions_point_at_cls_with_their_own_paragraph():
    art = _with_impossible(_article("D", 3, 2), 2)
    exs = impossible_examples([art])
    assert len(exs) == 6
    for e in exs:
        paragraph = int(e.qid.split("-")[1])
        assert e.context == art["paragraphs"][paragraph]["context"]
        assert (e.answer_start, e.answer_text, e.answers) == (-1, "", ())
        assert "colour" in e.question


def test_same_topic_split_holds_out_whole_articles_with_enough_questions(monkeypatch):
    import retrieval.training as training

    monkeypatch.setattr(training, "SAME_TOPIC_HELD_OUT", 10)
    arts = [_with_impossible(_article(f"S{i}", 2, 1), 2) for i in range(8)]  # 4 each
    train, held = split_same_topic(arts)
    assert len(held) == 3  # 4 + 4 < 10 <= 12
    assert sum(impossible_count(a) for a in held) >= 10
    assert not {a["title"] for a in train} & {a["title"] for a in held}
    assert len(train) + len(held) == 8
    again = split_same_topic(list(reversed(arts)))[1]
    assert sorted(a["title"] for a in again) == sorted(a["title"] for a in held)


def test_training_says_which_data_file_is_missing(tmp_path, capsys):
    from retrieval.training import main

    assert main(["--data", str(tmp_path / "nowhere.json")]) == 2
    assert f"training data not found: {tmp_path / 'nowhere.json'}" in capsys.readouterr().err
    tune = tmp_path / "tune.json"
    tune.write_text(json.dumps({"data": [_article(f"E{i}", 2, 1) for i in range(6)]}))
    missing = tmp_path / "squad2.json"
    assert main(["--data", str(tune), "--same-topic", str(missing), "--no-save"]) == 2
    assert f"--same-topic: SQuAD 2.0 data not found: {missing}" in capsys.readouterr().err


def test_training_precision_follows_the_request_or_the_cpu_flags(monkeypatch, tmp_path):
    import retrieval.training as training

    assert training_precision("fp32") == "fp32"
    assert training_precision("bf16") == "bf16"
    cpuinfo = tmp_path / "cpuinfo"
    real_path = training.Path

    def fake_path(name):
        return cpuinfo if name == "/proc/cpuinfo" else real_path(name)

    monkeypatch.setattr(training, "Path", fake_path)
    cpuinfo.write_text("flags\t: fpu avx2 avx512f avx512_bf16\n")
    assert training_precision("auto") == "bf16"
    cpuinfo.write_text("flags\t: fpu avx2 fma\n")
    assert training_precision("auto") == "fp32"


def test_featurize_labels_point_at_the_answer_tokens(tokenizer):
    from retrieval.training import featurize

    art = _article("C", 3, 1)
    exs = examples([art], negatives=1.0, seed=1)
    from retrieval.reader import window_tokenizer

    feats = featurize(window_tokenizer(64, 16), exs)
    assert len(feats) == len(exs)
    for ex, feat in zip(exs, feats, strict=True):
        if ex.answer_start < 0:
            assert (feat["start"], feat["end"]) == (0, 0)
        else:
            piece = feat["input_ids"][feat["start"] : feat["end"] + 1]
            assert tokenizer.decode(piece) == ex.answer_text


# --- the real model -------------------------------------------------------------------------


@pytest.mark.slow
def test_saved_weights_round_trip_stay_small_and_export_faithfully(tmp_path, monkeypatch):
    import torch

    from retrieval.training import TorchLogits, build_model, save_weights

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = build_model()
    with torch.no_grad():
        model.qa_outputs.bias.fill_(0.5)
        model.bert.encoder.layer[0].output.dense.bias.add_(0.25)
    path = save_weights(model, tmp_path, {"max_length": 256, "stride": 64})
    assert path.stat().st_size <= 25_000_000
    from safetensors.torch import load_file

    saved = load_file(str(path))
    assert not any("word_embeddings" in k for k in saved)
    assert all(v.dtype == torch.float16 for v in saved.values())
    reader = SpanReader.load(tmp_path, variant="fp32")
    assert (reader.max_length, reader.stride) == (256, 64)
    # The exported graph computes what the torch model with the saved weights computes.
    windows = reader.encode("Who steered the ferry?", ["Captain Ilse Marwood steered it. " * 20])
    ours = reader.logits(windows)
    theirs = TorchLogits(build_model(tmp_path))(
        windows.input_ids, windows.attention_mask, windows.token_type_ids
    )
    real = windows.attention_mask.astype(bool)  # padded positions are never read
    for mine, reference in zip(ours, theirs, strict=True):
        assert np.abs(mine[real] - reference[real]).max() < 1e-3
    assert np.abs(theirs[0][:, 0] - TorchLogits(model)(
        windows.input_ids, windows.attention_mask, windows.token_type_ids)[0][:, 0]
    ).max() < 0.05  # fmt: skip
    assert list((tmp_path / "cache" / "article-qa" / "onnx").glob("reader-*-int8.onnx"))


@pytest.mark.slow
@pytest.mark.skipif(
    not (WEIGHTS_DIR / WEIGHTS_FILE).is_file(), reason="no trained reader weights committed"
)
def test_windows_read_one_by_one_give_the_logits_of_a_padded_batch():
    reader = SpanReader.load(variant="fp32")
    passages = [
        "The bridge was opened in 1932 by Mayor Ellen Park.",
        "The river crossing took four years to build, and the crowd that came to see the "
        "ribbon cut filled both banks of the river for most of the afternoon.",
        "Lindholm is a harbour town.",
    ]
    windows = reader.encode("Who opened the bridge?", passages)
    lengths = windows.attention_mask.sum(axis=1)
    assert len(set(lengths.tolist())) == 3  # three lengths: padding to do
    start, end = reader.logits(windows)
    padded = reader.model(windows.input_ids, windows.attention_mask, windows.token_type_ids)
    real = windows.attention_mask.astype(bool)
    for mine, batch in zip((start, end), padded, strict=True):
        assert np.abs(mine[real] - np.asarray(batch)[real]).max() < 1e-4
        assert (mine[~real] == PADDED_LOGIT).all()


@pytest.mark.slow
@pytest.mark.skipif(
    not (WEIGHTS_DIR / WEIGHTS_FILE).is_file(), reason="no trained reader weights committed"
)
@pytest.mark.parametrize("variant", ["auto", "fp32", "int8"])
def test_trained_reader_answers_simple_questions(variant):
    reader = SpanReader.load(variant=variant)
    cases = [
        (
            "When was the bridge opened?",
            "The river crossing took four years to build. The bridge was opened in 1932 "
            "by Mayor Ellen Park, who cut the ribbon in front of a large crowd.",
            "1932",
        ),
        (
            "Who opened the bridge?",
            "The river crossing took four years to build. The bridge was opened in 1932 "
            "by Mayor Ellen Park, who cut the ribbon in front of a large crowd.",
            "Ellen Park",
        ),
        (
            "Where did the orchestra perform?",
            "Last spring the city orchestra toured the north. It performed in Lindholm, "
            "a small harbour town, before returning home for the summer season.",
            "Lindholm",
        ),
    ]
    for question, passage, expected in cases:
        (span,) = reader.read(question, [passage])
        assert expected in span.text, (question, span)
        assert len(span.text) <= len(expected) + 12
        assert passage[span.start : span.end] == span.text

    # the passage that holds the answer outranks an unrelated one
    weather = "Heavy rain fell across the valley on Tuesday, and farmers delayed the harvest."
    spans = reader.read("When was the bridge opened?", [weather, cases[0][1]])
    assert spans[1].score - spans[1].null_score > spans[0].score - spans[0].null_score
