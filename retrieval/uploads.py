"""Files a user uploads on the page, checked and saved into the corpus folder.

Owns what an upload may be (a .txt, .md or .html file of at most
`MAX_UPLOAD_BYTES`), turning whatever name the browser sent into a safe file
name inside the corpus folder (no directories, no `..`, no control
characters), and never replacing an existing article with different content
unless asked to. Files are written atomically, so a build running at the same
moment reads the old file or the new one, never half of it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import UserError
from retrieval.store import atomic_write_bytes

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# Most file systems cap a name at 255 bytes.
_MAX_NAME_BYTES = 255
_UNSAFE_RUN = re.compile(r"-{2,}")


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    replaced: bool  # True when an existing file with other content was overwritten
    unchanged: bool = False  # True when the same file was already there: nothing was written


def safe_filename(filename: str) -> str:
    """`filename` reduced to a plain name: last path part, letters/digits/`-_.` only.

    Raises UserError when nothing usable is left.
    """
    # Browsers may send a path; Windows ones with backslashes.
    base = re.split(r"[/\\]", unicodedata.normalize("NFC", filename))[-1]
    kept = []
    for char in base:
        if unicodedata.category(char)[0] == "C":
            continue  # control and format characters: dropped, not replaced
        kept.append(char if char.isalnum() or char in "-_." else "-")
    name = _UNSAFE_RUN.sub("-", "".join(kept))
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    # Leading dots would hide the file or climb out of the folder; trailing ones are lost
    # on some systems.
    stem, suffix = stem.strip("-. "), suffix.strip("-. ")
    if not stem:
        raise UserError(
            f"the file name {filename!r} has no usable characters: "
            "rename the file and upload it again"
        )
    suffix = "." + suffix.lower() if suffix else ""
    while len((stem + suffix).encode("utf-8")) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def save_upload(
    corpus_dir: str | Path, filename: str, data: bytes, *, overwrite: bool = False
) -> SavedUpload:
    """Check an uploaded file and save it into `corpus_dir` under a safe name.

    Saving the same content again is a no-op; a different file under an existing
    name is refused unless `overwrite` is True.
    """
    name = safe_filename(filename)
    if Path(name).suffix not in UPLOAD_SUFFIXES:
        raise UserError(
            f"{name} is not a supported file type: upload {', '.join(UPLOAD_SUFFIXES)} files"
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise UserError(
            f"{name} is {len(data) / 1024 / 1024:.1f} MB; the limit is "
            f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB per file: split it or upload a shorter file"
        )
    if not data.strip():
        raise UserError(f"{name} is empty: there is no article in it to index")
    corpus_dir = Path(corpus_dir)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    target = corpus_dir / name
    replaced = False
    if target.exists():
        if target.read_bytes() == data:
            return SavedUpload(target, replaced=False, unchanged=True)
        if not overwrite:
            raise UserError(
                f"{name} already exists in {corpus_dir} with different content: "
                "rename your file, or choose to replace the existing one"
            )
        replaced = True
    atomic_write_bytes(target, data)
    return SavedUpload(target, replaced=replaced)


__all__ = ["MAX_UPLOAD_BYTES", "UPLOAD_SUFFIXES", "SavedUpload", "safe_filename", "save_upload"]
