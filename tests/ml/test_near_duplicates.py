"""Near-duplicate audit: a resized, recompressed or recropped copy is found; a different lesion is not."""

import io

import numpy as np
from PIL import Image

from ml.near_duplicates import MATCH_DISTANCE, hashes_of, near_duplicates


def _lesion(seed: int, size=(600, 450)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    # Skin darkening towards the edges, as a dermatoscope's lens leaves it: smooth and
    # photo-specific (the centre of the light moves).
    centre = rng.uniform(0.3, 0.7, 2)
    light = 1 - 0.6 * ((xx / width - centre[0]) ** 2 + (yy / height - centre[1]) ** 2)
    image = rng.uniform(170, 230, 3) * light[..., None]
    for _ in range(6):  # a lesion made of a few overlapping blobs of its own
        cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
        r = rng.uniform(0.05, 0.15) * height
        blob = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        image[blob] = rng.uniform(40, 140, 3)
    return np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)


def _save(tmp_path, name: str, pixels: np.ndarray, size, *, crop: bool = False, quality=85):
    image = Image.fromarray(pixels)
    if crop:
        side = min(image.size)
        left = (image.width - side) // 2
        image = image.crop((left, 0, left + side, side))
    buffer = io.BytesIO()
    image.resize(size).save(buffer, "JPEG", quality=quality)
    path = tmp_path / f"{name}.jpg"
    path.write_bytes(buffer.getvalue())
    return path


def test_a_recropped_recompressed_copy_is_found_and_other_lesions_are_not(tmp_path) -> None:
    originals = {f"train-{i}": _lesion(i) for i in range(20)}
    training = [
        (name, hashes_of(_save(tmp_path, name, pixels, (200, 150)), with_centre=True))
        for name, pixels in originals.items()
    ]
    copy = _save(tmp_path, "copy", originals["train-7"], (224, 224), crop=True, quality=70)
    stranger = _save(tmp_path, "stranger", _lesion(99), (224, 224), crop=True)
    external = [(path.stem, hashes_of(path, with_centre=False)) for path in (copy, stranger)]
    matches = near_duplicates(training, external)
    assert [(m.external_id, m.training_id) for m in matches] == [("copy", "train-7")]
    assert matches[0].distance <= MATCH_DISTANCE
    everything = near_duplicates(training, external, max_distance=256)
    assert next(m for m in everything if m.external_id == "stranger").distance > MATCH_DISTANCE
