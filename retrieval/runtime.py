"""Both models on ONNX Runtime: graphs exported once from the weights, precision chosen per CPU.

The embedder (all-MiniLM-L6-v2 with its mean pooling and L2 normalization) and the
span reader (the same BERT fine-tuned with a start/end head) are built by
transformers from the packaged weights (and the reader's shipped parameters),
exported with ``torch.onnx.export``, fused by ONNX Runtime's transformer optimizer
(attention, GELU, layer norms) and, for the int8 precision, dynamically quantized
(weights per channel; the feed-forward output projections stay float, which keeps
the vectors at cosine >= 0.995 of float32 instead of 0.986). That happens once, at
``make setup`` or first use, into ``~/.cache/article-qa/onnx/`` (``$XDG_CACHE_HOME``)
under a key made of the weights' bytes and this recipe, so new weights get new graphs.

At run time only onnxruntime and numpy are imported: no torch, no transformers.
Which precision runs is measured once per CPU (int8 is several times faster where
the CPU has VNNI, less so on plain AVX2, and both are timed where they run) and
remembered beside the graphs; ``ARTICLE_QA_PRECISION`` (``fp32``, ``int8`` or
``auto``) overrides it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.minilm import model_path
from retrieval.store import atomic_write_text

log = logging.getLogger(__name__)

# Bump when the export, the fusions or the quantization recipe change: old graphs are ignored.
RECIPE = 3
KINDS = ("embedder", "reader")
PRECISIONS = ("fp32", "int8")
# int8 must beat float32 by this much to be chosen (its vectors differ a little).
INT8_GAIN = 0.8
NUM_HEADS = 12
HIDDEN = 384
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The reader ships every parameter fine-tuning changed; the word embeddings stay the package's.
FROZEN_PREFIXES = ("bert.embeddings.word_embeddings.",)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "article-qa"


def _file_digest(path: Path) -> str:
    """sha256 of a file's bytes, remembered beside the graphs by path, size and mtime.

    Every start keys the graphs by the weights; hashing 110 MB of them each time
    would cost a fifth of a second of every cold start.
    """
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    known_file = cache_root() / "onnx" / "digests.json"
    try:
        known = json.loads(known_file.read_text())
    except (OSError, ValueError):
        known = {}
    remembered = stat.st_size >= 1 << 20  # small files cost nothing to hash again
    if remembered and isinstance(known.get(stamp), str):
        return known[stamp]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if not remembered:
        return digest.hexdigest()
    known[stamp] = digest.hexdigest()
    try:
        known_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(known_file, json.dumps(known, indent=1) + "\n")
    except OSError:  # a read-only cache: hash again next time
        pass
    return known[stamp]


def weights_key(kind: str, reader_weights: Path | None = None) -> str:
    """The cache key of a kind's graphs: the bytes of every weight file, and the recipe."""
    from importlib.metadata import version

    files = [model_path() / "model.safetensors"]
    if kind == "reader":
        if reader_weights is None:
            raise ValueError("the reader's graph needs the reader's weights")
        files.append(reader_weights)
    parts = [f"recipe={RECIPE}", kind, f"onnxruntime={version('onnxruntime')}"]
    parts += [_file_digest(path) for path in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def graph_path(kind: str, precision: str, key: str) -> Path:
    return cache_root() / "onnx" / f"{kind}-{key}-{precision}.onnx"


# --- export (imports torch and transformers; only ever run once per set of weights) ----------


def _torch_module(kind: str, reader_weights: Path | None) -> Any:
    """transformers' BERT for `kind`, in float32 eval mode, returning what the graph returns."""
    import torch
    from transformers import BertForQuestionAnswering, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "newly initialized qa_outputs": loaded just below
    if kind == "embedder":
        bert = BertModel.from_pretrained(
            str(model_path()), add_pooling_layer=False, attn_implementation="eager"
        )

        class Pooled(torch.nn.Module):
            """sentence-transformers' pipeline for this model: mean pooling, then L2 norm."""

            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                tokens = self.bert(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state
                weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
                mean = (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
                # The token vectors too: a sentence's vector is pooled from its passage's.
                return torch.nn.functional.normalize(mean, p=2, dim=1), tokens

        return Pooled().eval()
    model = BertForQuestionAnswering.from_pretrained(str(model_path()), attn_implementation="eager")
    load_reader_state(model, reader_weights)

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qa = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.qa(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.start_logits, out.end_logits

    return Logits().eval()


def load_reader_state(model: Any, weights: Path | None) -> None:
    """Load the shipped reader parameters (float16 on disk) into a BertForQuestionAnswering."""
    from safetensors.torch import load_file

    if weights is None or not Path(weights).is_file():
        raise FileNotFoundError(
            f"reader weights not found at {weights}; run `make train-reader` to train them"
        )
    saved = load_file(str(weights))
    expected = {k for k in model.state_dict() if not k.startswith(FROZEN_PREFIXES)}
    unknown, missing = sorted(set(saved) - expected), sorted(expected - set(saved))
    if unknown or missing:
        raise ValueError(
            f"{weights} does not match the reader model "
            f"(unknown: {unknown[:3]}, missing: {missing[:3]}); run `make train-reader`"
        )
    model.load_state_dict({k: v.float() for k, v in saved.items()}, strict=False)
    model.eval()


def export(kind: str, key: str, reader_weights: Path | None = None) -> None:
    """Write the fp32 and int8 graphs of `kind` under `key` (atomically, each file)."""
    import warnings

    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    started = time.perf_counter()
    module = _torch_module(kind, reader_weights)
    outputs = ["embedding", "tokens"] if kind == "embedder" else ["start_logits", "end_logits"]
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS + tuple(outputs)}
    if kind == "embedder":
        axes["embedding"] = {0: "batch"}
    sample = torch.ones((2, 16), dtype=torch.int64)
    fp32, int8 = graph_path(kind, "fp32", key), graph_path(kind, "int8", key)
    fp32.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=fp32.parent) as tmp:
        raw, fused, quantized = (Path(tmp) / name for name in ("raw.onnx", "fp32.onnx", "q.onnx"))
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            # The TorchScript exporter: its graph is the one ONNX Runtime's BERT fusions match.
            torch.onnx.export(
                module, (sample, sample, torch.zeros_like(sample)), str(raw),
                input_names=list(INPUTS), output_names=outputs, dynamic_axes=axes,
                opset_version=17, dynamo=False,
            )  # fmt: skip
        optimized = optimize_model(
            str(raw), model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN
        )
        optimized.save_model_to_file(str(fused))
        quantize(fused, quantized, kind)
        for source, target in ((fused, fp32), (quantized, int8)):
            os.chmod(source, 0o644)
            os.replace(source, target)
    for old in fp32.parent.glob(f"{kind}-*.onnx"):  # graphs of earlier weights or recipes
        if key not in old.name:
            old.unlink(missing_ok=True)
    log.info("exported the %s graphs in %.1f s", kind, time.perf_counter() - started)


def quantize(source: Path, target: Path, kind: str) -> None:
    """Dynamic int8 of `source`'s matrix products, by the recipe measured for `kind`.

    Weights are quantized per output channel. The embedder keeps its feed-forward
    output projections in float (cosine to float32 on 192 SQuAD paragraphs: min
    0.995, mean 0.997; 0.986 / 0.993 with them quantized). The reader keeps its
    start/end head in float and uses signed 7-bit weights, which cannot saturate the
    AVX2 int8 kernels (validation EM 56.9 against 57.1 in float32; 56.0 otherwise).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False)
    products = [node.name for node in graph.graph.node if node.op_type in ("MatMul", "Attention")]
    if kind == "embedder":
        keep_float = [name for name in products
                      if "/output/dense/" in name and "/attention/" not in name]  # fmt: skip
        signed, reduce_range = False, False
    else:
        keep_float = [name for name in products if "qa_outputs" in name]
        signed, reduce_range = True, True
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs every tensor, and advice
    try:
        quantize_dynamic(
            str(source), str(target),
            op_types_to_quantize=["MatMul", "Attention"], per_channel=True,
            weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
            reduce_range=reduce_range, nodes_to_exclude=keep_float,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
    finally:
        root.setLevel(level)


def ensure_graphs(kind: str, reader_weights: Path | None = None) -> str:
    """The key of `kind`'s graphs, exporting them first when they are not in the cache."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    key = weights_key(kind, reader_weights)
    if not all(graph_path(kind, p, key).is_file() for p in PRECISIONS):
        log.info("exporting the %s to ONNX (once for these weights)...", kind)
        export(kind, key, reader_weights)
    return key


# --- run time ---------------------------------------------------------------------------------


def session(path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session of `path` on `threads` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Threads that spin after a run, waiting for the next, hold a core the other session
    # (embedder or reader) and FAISS need: at a million passages the warm `ask` took 172 ms
    # p50 with spinning and 147 without (the reader 135 -> 111 ms); at 48 articles, 94 and 95.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def one_numpy_blas_thread() -> None:
    """Run numpy's BLAS on one thread in this process (the answering one).

    One question's products (its vector against a few hundred sentences) gain nothing from
    a second thread, and OpenBLAS's threads spin after each product, holding the core that
    the reader's next run needs: at a million passages the reader took 116 ms of a warm
    `ask` with two BLAS threads and 92 ms with one (ask p50 142 -> 117 ms, medians of 100
    questions, 2-core AVX2 VM). FAISS's own BLAS, which batch searches use, is left alone.
    """
    from threadpoolctl import ThreadpoolController

    for library in ThreadpoolController().lib_controllers:
        # FAISS's wheel carries its own OpenBLAS (in ``faiss_cpu.libs``).
        if library.user_api == "blas" and "faiss" not in Path(library.filepath).parent.name:
            library.set_num_threads(1)


def feeds(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> dict[str, np.ndarray]:
    return dict(zip(INPUTS, (ids, mask, types), strict=True))


def machine_signature() -> str:
    """What the speed of a precision depends on: processor, its flags, runtime, cores."""
    from importlib.metadata import version

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    cpu = [line for line in lines if line.startswith(("model name", "flags"))][:2]
    parts = [platform.machine(), platform.processor(), *cpu, version("onnxruntime")]
    parts.append(f"cores={os.cpu_count()}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def choices_path() -> Path:
    return cache_root() / "precision.json"


def choose_precision(kind: str, time_one: Callable[[str], float], rounds: int = 3) -> str:
    """The precision `kind` runs at here: the environment's, else measured once per machine.

    `time_one(precision)` runs a typical call at that precision and returns seconds;
    int8 is kept when it takes at most ``INT8_GAIN`` of float32's time (best of `rounds`).
    """
    wanted = os.environ.get("ARTICLE_QA_PRECISION", "auto")
    if wanted in PRECISIONS:
        return wanted
    if wanted != "auto":
        raise ValueError(f"ARTICLE_QA_PRECISION={wanted!r} is not one of {(*PRECISIONS, 'auto')}")
    signature = machine_signature()
    try:
        known = json.loads(choices_path().read_text())
    except (OSError, ValueError):
        known = {}
    if known.get("signature") != signature:
        known = {"signature": signature}
    record = known.get(kind)
    if isinstance(record, dict) and record.get("precision") in PRECISIONS:
        return str(record["precision"])
    timings = {}
    for precision in PRECISIONS:
        time_one(precision)  # warm-up
        timings[precision] = min(time_one(precision) for _ in range(rounds))
    chosen = "int8" if timings["int8"] <= INT8_GAIN * timings["fp32"] else "fp32"
    known[kind] = {"precision": chosen, "ms": {k: round(v * 1000, 2) for k, v in timings.items()}}
    try:
        choices_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(choices_path(), json.dumps(known, indent=2) + "\n")
    except OSError:  # a read-only home: measure again next time
        pass
    log.info("%s runs at %s here (%s)", kind, chosen, known[kind]["ms"])
    return chosen


@dataclass(frozen=True)
class Graphs:
    """The exported graphs of one kind and weights, opened on demand, one session per use."""

    kind: str
    key: str

    def path(self, precision: str) -> Path:
        return graph_path(self.kind, precision, self.key)


def open_graphs(kind: str, reader_weights: Path | None = None) -> Graphs:
    return Graphs(kind, ensure_graphs(kind, reader_weights))


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m retrieval.runtime`: export both graphs now (``make setup`` runs it)."""
    import argparse

    from retrieval.reader import WEIGHTS_DIR, WEIGHTS_FILE

    parser = argparse.ArgumentParser(prog="python -m retrieval.runtime", description=__doc__)
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for kind in KINDS:
        weights = WEIGHTS_DIR / WEIGHTS_FILE if kind == "reader" else None
        key = ensure_graphs(kind, weights)
        log.info("%s: %s", kind, graph_path(kind, "fp32", key).parent / f"{kind}-{key}-*.onnx")


if __name__ == "__main__":
    main()
