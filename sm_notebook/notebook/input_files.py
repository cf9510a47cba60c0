"""Signature inputs read from files: ``.npy``, ``.npz`` (``file.npz[name]``) and images.

Nothing is unpickled. Images (PNG, JPEG, ... through Pillow) become ``uint8`` pixel
arrays resized to the input's height and width when the signature fixes them, with a
batch dimension added when the input has one more dimension than the image; the pixel
values are not rescaled (the model's own preprocessing decides that).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SavedModelError
from ..literals import load_array_file

ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_input_file(text: str, spec=None) -> np.ndarray:
    """The array in file ``text`` (``x.npy``, ``x.npz``, ``x.npz[name]`` or an image), shaped
    for ``spec`` (a TensorSpec) when it is an image."""
    bare = text[:-1].split("[", 1)[0] if text.endswith("]") and "[" in text else text
    path = Path(bare).expanduser()
    if not path.is_file():
        raise SavedModelError(f"Input file {str(path)!r} does not exist (or is not a file). "
                              f"Give a {', '.join(ARRAY_SUFFIXES + IMAGE_SUFFIXES)} file.")
    suffix = path.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return load_array_file(str(path) + text[len(bare):], what=f"input file {path.name!r}")
    if suffix in IMAGE_SUFFIXES:
        return _read_image(path, spec)
    raise SavedModelError(f"Cannot read input file {path.name!r}: unknown type {suffix or '(none)'}; "
                          f"use {', '.join(ARRAY_SUFFIXES + IMAGE_SUFFIXES)}.")


def _read_image(path: Path, spec):
    try:
        from PIL import Image
    except ImportError:
        raise SavedModelError("Reading images needs Pillow: pip install pillow (or load the image "
                              "into a numpy array yourself).") from None
    shape = getattr(spec, "shape", None)
    channels = shape[-1] if shape and len(shape) >= 3 else None
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGBA" if channels == 4 else "RGB")
            if shape is not None and len(shape) >= 3 and shape[-3] and shape[-2] \
                    and shape[-3] > 0 and shape[-2] > 0:
                image = image.resize((shape[-2], shape[-3]), Image.BILINEAR)
            pixels = np.asarray(image)
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"Cannot read image {str(path)!r}: {exc}.") from None
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if shape is not None and len(shape) == pixels.ndim + 1:
        pixels = pixels[None]
    return pixels


def vocabulary_labels(meta_graph, classes: int) -> list[str] | None:
    """The lines of the metagraph's first text asset with exactly ``classes`` non-empty lines
    (class names for score outputs), or None."""
    from ..format.diskfiles import read_regular
    for asset in meta_graph.assets:
        if not asset.exists:
            continue
        try:
            text = read_regular(asset.path, max_bytes=4 << 20, what="vocabulary asset").decode("utf-8")
        except (SavedModelError, UnicodeDecodeError):
            continue
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) == classes:
            return lines
    return None


def score_labels(meta_graph, outputs: dict) -> list[str] | None:
    """Class names for the first (batch, classes) output a vocabulary asset matches, or None."""
    for value in outputs.values():
        shape = tuple(getattr(value, "shape", ()))
        if len(shape) == 2 and shape[-1] >= 2:
            labels = vocabulary_labels(meta_graph, shape[-1])
            if labels is not None:
                return labels
    return None
