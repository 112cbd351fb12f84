"""Near-duplicate photos across two sets, by perceptual hash: is an evaluation set really unseen?

A photo that appears in training and again, resized, recompressed or recropped, in an external
set makes the external numbers optimistic. A difference hash (Krawetz's dHash: the grey image
shrunk to (side + 1) x side, one bit per horizontal step that gets brighter) changes little under
resizing, recompression and colour shifts. The usual 8 x 8 grid is too coarse for dermoscopy:
most photos are a dark blob on lighter skin, and different lesions came within 1 to 6 of its 64
bits of each other; at 16 x 16 (256 bits) they lie far apart. Each training photo is hashed
twice, whole and as its centred square, because the external set may hold centre crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.preprocess import centre_square, decode_image

SIDE = 16
# At or below this many of the 256 bits two photos are reported as a likely match: 30 of
# HAM10000's 600 x 450 originals, each made into a 200 x 150 JPEG and into a 224 x 224 centre crop
# recompressed at quality 80, came out 0 to 21 bits apart (median 5).
MATCH_DISTANCE = 21

Hash = np.ndarray  # SIDE * SIDE / 8 uint8


def difference_hash(image: np.ndarray) -> Hash:
    """The 256-bit difference hash of a uint8 (H, W, 3) photo, packed into 32 bytes."""
    grey = Image.fromarray(np.ascontiguousarray(image)).convert("L")
    small = np.asarray(grey.resize((SIDE + 1, SIDE), Image.Resampling.LANCZOS), dtype=np.int16)
    return np.packbits((small[:, 1:] > small[:, :-1]).flatten())


def hashes_of(path: str | Path, *, with_centre: bool) -> list[Hash]:
    image = decode_image(Path(path).read_bytes())
    found = [difference_hash(image)]
    if with_centre and image.shape[0] != image.shape[1]:
        found.append(difference_hash(centre_square(image)))
    return found


@dataclass(frozen=True)
class Match:
    external_id: str
    training_id: str
    distance: int


def near_duplicates(
    training: Sequence[tuple[str, Sequence[Hash]]],
    external: Sequence[tuple[str, Sequence[Hash]]],
    max_distance: int = MATCH_DISTANCE,
) -> list[Match]:
    """For each external photo, its closest training photo when within ``max_distance`` bits."""
    owners = [name for name, found in training for _ in found]
    table = np.array([h for _, found in training for h in found], dtype=np.uint8)
    matches = []
    for name, found in external:
        if not len(table):
            break
        distances = np.min(
            [np.bitwise_count(np.bitwise_xor(table, h)).sum(axis=1) for h in found], axis=0
        )
        best = int(np.argmin(distances))
        if distances[best] <= max_distance:
            matches.append(Match(name, owners[best], int(distances[best])))
    return matches
