"""`article-qa build --ray`: the same build, its heavy stages spread over a Ray cluster.

Ray Data reads, cleans and chunks the corpus files (one task per block of files) and
embeds the new texts on a pool of actors, each holding the model once, as many as the
cluster has CPUs for. The driver keeps what a build must decide in one place: which
texts are new (by content hash, against the live version and what an unfinished
build already embedded, see :mod:`retrieval.resume`), and writing the new version to
the chosen store, the same way a local build does. Nothing here is imported by a
local build.

On a cluster, every node must see the corpus at the same path (a shared file system):
the tasks open the files themselves.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.articles import (
    Article,
    KeptArticle,
    LoadResult,
    SkippedFile,
    gather,
    list_files,
    load_file,
)
from retrieval.chunking import ChunkingConfig, chunk_article, split_sentences
from retrieval.embedding import load_embedder
from retrieval.errors import UserError
from retrieval.indexing import (
    BuildReport,
    Embed,
    EmbedItem,
    Parts,
    Progress,
    build_loaded,
    embed_items,
    file_hashes,
    index_config,
    open_previous,
    previous_record,
    unchanged_files,
)
from retrieval.store import IndexConfig, build_lock

log = logging.getLogger(__name__)

# Texts an embedding actor takes at a time: enough to keep its batches full.
ACTOR_BATCH = 256
# Files a reading task takes at a time.
FILES_PER_TASK = 64


@contextmanager
def ray_cluster(address: str | None, temp_dir: str | None = None) -> Iterator[Any]:
    """Ray, connected to the cluster at `address`, or to a local one started for the build.

    A local instance uses every CPU here and is shut down afterwards; a cluster is only
    disconnected from. An address that does not answer is a one-line UserError.
    """
    # Ray Data logs every dataset it runs, and that its progress bars are off: the build
    # shows its own progress, and its own errors.
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray

    if address:
        _check_reachable(address)
    if ray.is_initialized():  # a caller (a test, a notebook) connected already
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR}
    made = None
    if address:
        options["address"] = address
    else:
        options["num_cpus"] = os.cpu_count() or 1
        # Short: Ray's socket paths live under it.
        options["_temp_dir"] = temp_dir or (made := tempfile.mkdtemp(prefix="aqa-ray-"))
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"could not start or reach {where}: {first}") from None
    try:
        from ray.data import DataContext

        context = DataContext.get_current()
        context.enable_progress_bars = False  # the build shows its own, with a rate
        context.execution_options.preserve_order = True
        yield ray
    finally:
        ray.shutdown()
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def _check_reachable(address: str, seconds: float = 5.0) -> None:
    """Fail in seconds, in one line, when nothing listens at a host:port address.

    (Ray itself keeps retrying an address that does not answer for minutes.)
    """
    where = address.split("://", 1)[-1]
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as error:
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        raise UserError(f"could not reach the Ray cluster at {address}: {reason}") from None


def _read_files(batch: dict[str, np.ndarray], chunking: ChunkingConfig) -> dict[str, list]:
    """A Ray task: read, clean and chunk a block of corpus files."""
    payloads = []
    for path in batch["path"].tolist():
        articles, skipped = load_file(Path(path))
        parts = {a.id: (chunk_article(a, chunking), split_sentences(a)) for a in articles}
        payloads.append(pickle.dumps((articles, skipped, parts)))
    return {"order": batch["order"].tolist(), "payload": payloads}


def load_on_cluster(
    paths: Sequence[str | Path],
    config: IndexConfig,
    kept: Mapping[str, Sequence[KeptArticle]] | None = None,
) -> tuple[LoadResult, Parts]:
    """The corpus as a local load sees it (same order, same duplicates), read on the cluster;
    a file named in `kept` is not read (`articles.load_articles`)."""
    import ray

    kept = kept or {}
    files = [path.as_posix() for path in list_files(paths)]
    items = [{"order": i, "path": path} for i, path in enumerate(files) if path not in kept]
    read: dict[int, tuple[list[Article], list[SkippedFile]]] = {}
    parts: Parts = {}
    if items:
        rows = (
            ray.data.from_items(items, override_num_blocks=max(1, len(items) // FILES_PER_TASK))
            .map_batches(_read_files, fn_kwargs={"chunking": config.chunking}, batch_format="numpy")
            .take_all()
        )
        for row in rows:
            articles, skipped, found = pickle.loads(row["payload"])
            read[row["order"]] = (articles, skipped)
            for article_id, pieces in found.items():
                parts.setdefault(article_id, pieces)
    loaded = (
        (path, kept[path], []) if path in kept else (path, *read[order])
        for order, path in enumerate(files)
    )
    return gather(loaded), parts


class _EmbeddingActor:
    """A Ray actor holding the embedding model, on the CPUs Ray gave it.

    The model and the thread count are class attributes of a subclass made per build
    (`_actor_class`): constructor arguments would go through Ray's object store, and Ray
    warns that an actor restarted after they are gone cannot be made again.
    """

    model = ""
    threads = 1

    def __init__(self) -> None:
        self.embedder = load_embedder(self.model, threads=self.threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # A text's spans travel as JSON: (key, start, end) triples.
        items = [
            (str(key), str(text), tuple((k, a, b) for k, a, b in json.loads(spans)))
            for key, text, spans in zip(batch["key"], batch["text"], batch["spans"], strict=True)
        ]
        keys, vectors = embed_items(self.embedder, items)
        return {"key": np.array(keys, dtype=object), "vector": vectors}


def _actor_class(model: str, threads: int) -> type[_EmbeddingActor]:
    return type("EmbeddingActor", (_EmbeddingActor,), {"model": model, "threads": threads})


def cluster_embed(model: str, cpus_per_actor: int = 1) -> Embed:
    """Embedding on a pool of actors, one per `cpus_per_actor` CPUs of the cluster."""

    def embed(
        items: list[EmbedItem],
        done: Callable[[list[str], np.ndarray], None],
        tick: Callable[[int], None],
    ) -> None:
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = max(1, min(cpus // cpus_per_actor, -(-len(items) // ACTOR_BATCH)))
        dataset = ray.data.from_items(
            [{"key": key, "text": text, "spans": json.dumps(spans)} for key, text, spans in items],
            override_num_blocks=max(actors, len(items) // (4 * ACTOR_BATCH)),
        ).map_batches(
            _actor_class(model, cpus_per_actor),
            batch_size=ACTOR_BATCH,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor,
        )
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            keys = [str(key) for key in batch["key"].tolist()]
            done(keys, np.asarray(batch["vector"], dtype=np.float32))
            tick(len(keys))

    return embed


def build_on_cluster(
    corpus: Sequence[str | Path],
    index_dir: str | Path,
    *,
    address: str | None = None,
    config: IndexConfig | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    store: str | None = None,
    temp_dir: str | None = None,
) -> BuildReport:
    """`indexing.build_index`, with reading, cleaning, chunking and embedding done by Ray.

    `address`: a running cluster ("ray://host:10001", "host:6379" or "auto"); None starts
    a local instance for the build. The index it writes is the one a local build writes.
    """
    index_dir = Path(index_dir)
    config = config or index_config()
    with build_lock(index_dir):
        started = time.perf_counter()
        previous = open_previous(index_dir, config, rebuild)
        record = previous_record(previous)
        files = file_hashes(corpus, record)
        with ray_cluster(address, temp_dir):
            loaded, parts = load_on_cluster(corpus, config, unchanged_files(record, files))
            return build_loaded(
                index_dir, loaded, files, previous, config=config, progress=progress,
                started=started, store=store, parts=parts, embed=cluster_embed(config.model),
                record=record,
            )  # fmt: skip
