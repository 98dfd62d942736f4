"""Tests of retrieval.bench.speed: the table it prints (the timing itself is `make bench-speed`)."""

from __future__ import annotations

from retrieval.bench.speed import ENGINES, REFERENCE, format_speed_table


def test_table_has_a_row_per_engine_with_ratios_and_dashes_where_not_measured():
    report = {
        "texts": 1200, "articles": 4, "questions": 100, "rounds": 3, "cpu": "Test CPU",
        "cores": 2,
        "engines": {
            REFERENCE: {"texts_per_s": 50.0, "build_ratio": 1.0, "ask_p50_ms": 120.0,
                        "ask_p95_ms": 200.0, "ask_p50_ratio": 1.0},
            "onnxruntime int8": {"texts_per_s": 100.0, "build_ratio": 2.0, "ask_p50_ms": 40.0,
                                 "ask_p95_ms": 70.0, "ask_p50_ratio": 0.33, "cold_ask_s": 1.5,
                                 "page_first_answer_s": 3.2, "page_rss_mb": 400.0},
        },
    }  # fmt: skip
    lines = format_speed_table(report).splitlines()
    assert lines[0].startswith("1200 texts (4 articles' passages and sentences), 100 questions")
    assert "medians of 3 runs, Test CPU, 2 cores" in lines[0]
    reference = next(line for line in lines if line.startswith(f"| {REFERENCE} |"))
    assert reference.endswith("| – | – | – |")
    fast = next(line for line in lines if line.startswith("| onnxruntime int8 |"))
    assert "| 100.0 | 2.0 | 40.0 | 70.0 | 0.33 | 1.5 | 3.2 | 400.0 |" in fast
    assert ENGINES[0] == REFERENCE
