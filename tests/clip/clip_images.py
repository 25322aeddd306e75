"""Small image files for the CLIP tests."""

import numpy as np
from PIL import Image


def write_images(folder, n=5, size=20, seed=0):
    """n different small RGB PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 256, (size, size + i, 3), dtype=np.uint8)
        paths.append(folder / f"img{i}.png")
        Image.fromarray(arr).save(paths[-1])
    return paths
