#!/usr/bin/env python3
"""Writes the fixtures of the EmberData reader tests into Tests/EmberTests/Fixtures/data/.

The files are written by the reference implementations (numpy.save / numpy.lib.format for .npy,
Python's csv module for CSV, struct + numpy big-endian dtypes for IDX), and `expected.json`
records what each holds, as numpy and Python read it, so the Swift tests compare Ember's readers
with the reference, never with Ember's own output. Numbers are stored as strings (Python's repr,
"nan", "inf") so that int64 extremes and float bit patterns survive JSON exactly.

    pip install numpy
    python3 Tools/data/make_reader_fixtures.py

Malformed inputs (truncated, garbage headers, ragged rows, ...) are made by the Swift tests
themselves by editing these files in memory.
"""
import csv
import io
import json
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "EmberTests", "Fixtures", "data")
expected = {}


def text(v):
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return repr(float(v))  # exact for float32 and float64; 'nan', 'inf', '-inf'


def record(name, array):
    """Records what numpy reads back from the file `name`."""
    back = np.load(os.path.join(OUT, name), allow_pickle=False)
    assert back.dtype == array.dtype and back.shape == array.shape
    with open(os.path.join(OUT, name), "rb") as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
    expected[name] = {
        "shape": list(back.shape),
        "dtype": back.dtype.name,
        "descr": np.lib.format.dtype_to_descr(dtype) if dtype.fields is None else "structured",
        "fortran_order": bool(fortran),
        "version": "%d.%d" % version,
        "values": [] if dtype.fields is not None else [text(v) for v in back.ravel(order="C").tolist()],
    }


def save_npy(name, array, version=None):
    path = os.path.join(OUT, name)
    if version is None:
        np.save(path, array, allow_pickle=False)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, array, version=version, allow_pickle=False)
    record(name, array)


def npy_fixtures():
    rng = np.random.default_rng(7)
    save_npy("f4.npy", np.array([[1.5, -0.0, np.inf], [-np.inf, np.nan, 1e-45], [3.4028235e38, -2.75, 0.1]], dtype="<f4"))
    save_npy("f8.npy", rng.standard_normal(5).astype("<f8"))
    save_npy("i8.npy", np.array([[np.iinfo(np.int64).min, -1], [0, np.iinfo(np.int64).max]], dtype="<i8"))
    save_npy("i4.npy", np.array([np.iinfo(np.int32).min, -7, 0, 9, np.iinfo(np.int32).max], dtype="<i4"))
    save_npy("i2.npy", np.array([-32768, -2, 32767], dtype="<i2"))
    save_npy("i1.npy", np.array([-128, -1, 127], dtype="|i1"))
    save_npy("u1.npy", rng.integers(0, 256, size=(2, 3, 2)).astype("|u1"))
    save_npy("u2.npy", np.array([0, 65535], dtype="<u2"))
    save_npy("u4.npy", np.array([0, 4294967295], dtype="<u4"))
    save_npy("u8.npy", np.array([0, 2**63 - 1], dtype="<u8"))
    save_npy("u8_huge.npy", np.array([1, 2**64 - 1], dtype="<u8"))  # 2^64-1 does not fit int64
    save_npy("b1.npy", np.array([[True, False], [False, True]], dtype="|b1"))
    save_npy("f8_big.npy", np.array([1.0, -2.5, 1e300], dtype=">f8"))
    save_npy("i4_big.npy", np.array([-1, 2, 70000], dtype=">i4"))
    save_npy("scalar.npy", np.array(2.5, dtype="<f4"))
    save_npy("empty.npy", np.zeros((0, 3), dtype="<f4"))
    save_npy("v2.npy", np.arange(6, dtype="<f4").reshape(2, 3), version=(2, 0))
    save_npy("v3.npy", np.arange(4, dtype="<i8"), version=(3, 0))
    # Files Ember refuses (the tests check the errors).
    save_npy("fortran.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save_npy("f2.npy", np.array([1, 2], dtype="<f2"))
    save_npy("structured.npy", np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]))


def save_idx(name, array, code):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, code, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.tobytes())
    expected[name] = {
        "shape": list(array.shape),
        "dtype": array.dtype.name,
        "values": [text(v) for v in array.ravel().tolist()],
    }


def idx_fixtures():
    rng = np.random.default_rng(11)
    # An MNIST-style pair: 4 images of 3x2 pixels and their labels.
    save_idx("images.idx", rng.integers(0, 256, size=(4, 3, 2)).astype(">u1"), 0x08)
    save_idx("labels.idx", np.array([3, 0, 9, 3], dtype=">u1"), 0x08)
    save_idx("i1.idx", np.array([-128, 0, 127], dtype=">i1"), 0x09)
    save_idx("i2.idx", np.array([[-300, 2], [32767, -32768]], dtype=">i2"), 0x0B)
    save_idx("i4.idx", np.array([-70000, 1, 2147483647], dtype=">i4"), 0x0C)
    save_idx("f4.idx", rng.standard_normal((2, 2)).astype(">f4"), 0x0D)
    save_idx("f8.idx", np.array([0.1, -1e-300, np.inf], dtype=">f8"), 0x0E)


def csv_fixtures():
    # A small iris-like table: header with a quoted name holding a comma, an identifier column,
    # quoted numbers, spaces around numbers, CRLF line ends, class names as labels.
    rows = [
        ["id", "sepal length", "petal, width", "species"],
        ["a1", "5.1", "0.2", "setosa"],
        ["a2", " 7.0", "1.4 ", "versicolor"],
        ["a3", "6.3", "2.5", "virginica"],
        ["a4", "-4.9e-1", "0.25", "setosa"],
        ["a\"5\"", "5.5", "1.3", "versicolor"],
    ]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    for i, r in enumerate(rows):
        if i == 2:  # quote numbers too: readers must unquote before parsing
            buf.write(",".join('"%s"' % c if c.strip()[0:1].isdigit() or c.startswith(" ") else c for c in r) + "\r\n")
        else:
            w.writerow(r)
    with open(os.path.join(OUT, "iris_sample.csv"), "w", newline="") as f:
        f.write(buf.getvalue())
    parsed = list(csv.reader(io.StringIO(buf.getvalue())))
    header, body = parsed[0], parsed[1:]
    classes = sorted({r[3] for r in body})
    expected["iris_sample.csv"] = {
        "featureNames": header[1:3],
        "labelName": header[3],
        "classNames": classes,
        "features32": [text(np.float32(float(r[j]))) for r in body for j in (1, 2)],
        "features64": [text(float(r[j])) for r in body for j in (1, 2)],
        "labels": [classes.index(r[3]) for r in body],
        "ids": [r[0] for r in body],
    }

    # No header, label first (the layout of the popular MNIST CSVs), a trailing newline missing,
    # and a blank line in the middle.
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 17, size=(5, 4))
    labels = rng.integers(0, 10, size=5)
    lines = [",".join([str(labels[i])] + [str(v) for v in pixels[i]]) for i in range(5)]
    content = "\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])
    with open(os.path.join(OUT, "noheader.csv"), "w", newline="") as f:
        f.write(content)
    expected["noheader.csv"] = {
        "features32": [text(np.float32(v)) for v in pixels.ravel()],
        "labels": [int(v) for v in labels],
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    npy_fixtures()
    idx_fixtures()
    csv_fixtures()
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, into {OUT}")


if __name__ == "__main__":
    main()
