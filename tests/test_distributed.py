"""Tests of retrieval.distributed: `build --ray` on a local Ray instance makes the local index."""

from __future__ import annotations

import shutil
import sys
import tempfile

import numpy as np
import pytest
from click.testing import CliRunner

from retrieval.cli import main
from retrieval.indexing import build_index, index_config
from retrieval.store import current_version, load_index, read_corpus_record
from tests.helpers import FAKE, build_fake, closed_port, index_vectors, write_corpus

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module: 2 CPUs, its files and no token outside a temp dir."""
    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(prefix="aqa-ray-")  # short: Ray's socket paths live under it
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    yield
    ray.shutdown()
    patch.undo()
    shutil.rmtree(temp, ignore_errors=True)


def corpus_with_trouble(folder):
    corpus = write_corpus(folder)
    (corpus / "copy.txt").write_text((corpus / "harbour.txt").read_text(), encoding="utf-8")
    (corpus / "empty.txt").write_text("", encoding="utf-8")
    (corpus / "picture.png").write_bytes(b"\x89PNG")
    return corpus


def assert_same_index(mine, theirs, atol):
    assert read_corpus_record(mine.path).articles == read_corpus_record(theirs.path).articles
    assert mine.manifest.passages == theirs.manifest.passages
    assert mine.manifest.sentences == theirs.manifest.sentences
    ours, local = index_vectors(mine), index_vectors(theirs)
    for kind in ("passages", "sentences"):
        assert ours[kind][0] == local[kind][0]  # the same ids, in the same order
        assert np.abs(ours[kind][1] - local[kind][1]).max() <= atol


def test_build_ray_makes_the_local_build_s_index(local_ray, tmp_path):
    from retrieval.distributed import build_on_cluster

    corpus = corpus_with_trouble(tmp_path / "corpus")
    local = build_fake(corpus, tmp_path / "local")
    result = CliRunner().invoke(
        main,
        ["build", "--corpus", str(corpus), "--index", str(tmp_path / "ray"), "--model",
         "fake-hashed-words", "--ray"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"{local.articles} articles, {local.chunks} chunks" in result.output
    assert "duplicate" in result.output and "skipped" in result.output
    assert_same_index(load_index(tmp_path / "ray", FAKE), load_index(tmp_path / "local", FAKE), 0)
    # Incremental as a local build is: nothing new, nothing written.
    again = build_on_cluster([corpus], tmp_path / "ray", config=FAKE)
    assert not again.written and again.embedded == 0
    assert again.skipped == local.skipped and again.duplicates == local.duplicates
    # A changed file and a new one are all the cluster reads; the rest is kept from the index.
    (corpus / "bridge.txt").write_text("Bridge repainted\n\nThe old bridge is blue now.\n")
    (corpus / "harbour.txt").write_text("Harbour\n\nThe harbour was dredged in spring.\n")
    sent: list[str] = []
    real_from_items = ray.data.from_items

    def from_items(items, **kwargs):
        sent.extend(item["path"] for item in items if "path" in item)
        return real_from_items(items, **kwargs)

    patch = pytest.MonkeyPatch()
    patch.setattr(ray.data, "from_items", from_items)
    try:
        changed = build_on_cluster([corpus], tmp_path / "ray", config=FAKE)
    finally:
        patch.undo()
    # (harbour.txt was also the duplicate of copy.txt, and the last two are skipped: read anyway)
    reread = {"bridge.txt", "harbour.txt", "empty.txt", "picture.png"}
    assert {path.rsplit("/", 1)[1] for path in sent} == reread
    added = tuple(f"{corpus.as_posix()}/{name}" for name in ("bridge.txt", "harbour.txt"))
    assert changed.written and changed.added == added  # harbour.txt no longer a duplicate
    build_fake(corpus, tmp_path / "fresh", rebuild=True)
    assert_same_index(load_index(tmp_path / "ray", FAKE), load_index(tmp_path / "fresh", FAKE), 0)


@pytest.mark.slow
def test_a_ray_build_with_the_real_model_matches_within_1e5(local_ray, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("comet-discovery.txt", "rail-tunnel-opening.txt"):
        shutil.copy(f"corpus/{name}", corpus / name)
    from retrieval.distributed import build_on_cluster

    config = index_config()
    build_index([corpus], tmp_path / "local", config=config)
    build_on_cluster([corpus], tmp_path / "ray", config=config)
    assert_same_index(
        load_index(tmp_path / "ray", config), load_index(tmp_path / "local", config), 1e-5
    )


def test_an_unreachable_ray_cluster_is_one_line_and_the_index_stays(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    index = tmp_path / "index"
    build_fake(corpus, index)
    before = current_version(index)
    address = f"127.0.0.1:{closed_port()}"
    result = CliRunner().invoke(
        main,
        ["build", "--corpus", str(corpus), "--index", str(index), "--model",
         "fake-hashed-words", "--rebuild", "--ray", address],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == [f"error: could not reach the Ray cluster at {address}: connection refused"]
    assert current_version(index) == before


def test_a_local_build_never_imports_ray(tmp_path):
    import subprocess

    code = (
        "import sys; from tests.helpers import build_fake, write_corpus; "
        f"build_fake(write_corpus(__import__('pathlib').Path({str(tmp_path)!r}) / 'c'), "
        f"__import__('pathlib').Path({str(tmp_path)!r}) / 'i'); "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
