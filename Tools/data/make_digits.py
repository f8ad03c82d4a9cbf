#!/usr/bin/env python3
"""Writes Ember's embedded digits dataset as two IDX files (the MNIST file format).

Source: scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin and C. Kaynak, 1998; https://archive.ics.uci.edu/dataset/80, licensed CC BY 4.0).
scikit-learn (BSD-3-Clause) ships its test part, 1,797 images of 8x8 pixels with values 0..16
(counts of set pixels in 4x4 blocks of the original 32x32 bitmaps), as
`sklearn/datasets/data/digits.csv.gz`; `sklearn.datasets.load_digits()` reads it.

Output (committed; Ember reads it with `IDX` through `Bundle.module`, never downloads anything):
  Sources/EmberData/Resources/digits-images.idx  magic 0x00000803, dims 1797 x 8 x 8, ubyte
  Sources/EmberData/Resources/digits-labels.idx  magic 0x00000801, dim 1797, ubyte

It prints the per-class counts and FNV-1a checksums that `DataDigitsTests` asserts, so the test
checks Ember's copy against scikit-learn, not against Ember's own output.

    pip install scikit-learn numpy
    python3 Tools/data/make_digits.py
"""
import os
import struct

import numpy as np
from sklearn.datasets import load_digits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Sources", "EmberData", "Resources")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_idx(path: str, array: np.ndarray) -> None:
    assert array.dtype == np.uint8
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(array).tobytes())
    os.replace(tmp, path)


def main() -> None:
    digits = load_digits()
    data, target = digits.data, digits.target
    assert data.shape == (1797, 64) and target.shape == (1797,)
    # The values are small integers stored as float64: check that nothing is lost in uint8.
    assert np.all(data == np.round(data)) and data.min() == 0 and data.max() == 16
    assert set(np.unique(target)) == set(range(10))
    images = data.astype(np.uint8).reshape(1797, 8, 8)
    labels = target.astype(np.uint8)
    assert np.array_equal(images.reshape(1797, 64).astype(np.float64), data)
    assert np.array_equal(images, digits.images.astype(np.uint8))

    os.makedirs(OUT, exist_ok=True)
    write_idx(os.path.join(OUT, "digits-images.idx"), images)
    write_idx(os.path.join(OUT, "digits-labels.idx"), labels)

    counts = np.bincount(labels, minlength=10)
    print("samples:", len(labels))
    print("per-class counts:", counts.tolist())
    print("feature sum:", int(data.sum()))
    print("features FNV-1a 64 (row-major uint8): 0x%016X" % fnv1a64(images.tobytes()))
    print("labels FNV-1a 64 (uint8): 0x%016X" % fnv1a64(labels.tobytes()))
    print("first sample:", images[0].reshape(64).tolist(), "label", int(labels[0]))


if __name__ == "__main__":
    main()
