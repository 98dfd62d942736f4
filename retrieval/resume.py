"""What an unfinished build embedded, kept so the next build need not embed it again.

A build embeds its new texts in blocks and writes each block's vectors, keyed by the
hash of the text they embed, to ``<index>/resume/<model>/`` as soon as the block is
done (one ``.npz`` file per block, written atomically). A build killed at 60 % leaves
those blocks behind; the next build of any corpus reads them back and embeds only
what is missing. Once a build has saved its version, the folder is emptied.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import uuid
from pathlib import Path

import numpy as np

from retrieval.store import atomic_write_bytes

log = logging.getLogger(__name__)

RESUME_DIR = "resume"
# Texts embedded between two saves: small enough that a crash loses little, large
# enough that the files stay few (2,048 vectors of 384 floats: 3 MB a file).
BLOCK = 2048


class EmbeddingCache:
    """Vectors of one model, by text hash, saved block by block while a build runs."""

    def __init__(self, index_dir: str | Path, model: str, dimension: int) -> None:
        label = hashlib.sha256(model.encode("utf-8")).hexdigest()[:12]
        self.root = Path(index_dir) / RESUME_DIR
        self.folder = self.root / label
        self.dimension = dimension

    def load(self) -> dict[str, np.ndarray]:
        """Every vector saved so far; a file that cannot be read is skipped (and said)."""
        found: dict[str, np.ndarray] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(path, allow_pickle=False) as block:
                    keys, vectors = block["keys"], block["vectors"]
            except (OSError, ValueError, KeyError) as error:
                log.warning("ignoring %s: %s", path, error)
                continue
            if vectors.shape != (len(keys), self.dimension):
                log.warning("ignoring %s: vectors of another size", path)
                continue
            found.update(zip(keys.tolist(), vectors.astype(np.float32), strict=True))
        if found:
            log.info("resuming: %d vectors embedded by an unfinished build", len(found))
        return found

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Save one block of vectors (``vectors[i]`` embeds the text hashed to ``keys[i]``)."""
        if not keys:
            return
        buffer = io.BytesIO()
        np.savez(
            buffer,
            keys=np.asarray(keys, dtype=str),
            vectors=np.asarray(vectors, dtype=np.float32),
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / f"{uuid.uuid4().hex}.npz", buffer.getvalue())

    def clear(self) -> None:
        """Forget every saved block (the build they served has saved its version)."""
        shutil.rmtree(self.root, ignore_errors=True)
