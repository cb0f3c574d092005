import gzip
import shutil
import struct

import numpy as np
import pytest

from aics.core.errors import UserError
from aics.tasks.vae.data import MnistSplit, prepare, read_idx, write_idx


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, name):
    a = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, a)
    np.testing.assert_array_equal(read_idx(tmp_path / name), a)


def test_idx_header_is_the_mnist_one(tmp_path):
    write_idx(tmp_path / "l", np.arange(10, dtype=np.uint8))
    raw = (tmp_path / "l").read_bytes()
    assert struct.unpack(">II", raw[:8]) == (2049, 10) and len(raw) == 18


def test_malformed_idx_files(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(UserError, match=r"magic: bad IDX magic number 0x12340801"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 5, 28, 28) + b"\0" * 100)
    with pytest.raises(
        UserError, match=r"short: size mismatch: dimensions 5x28x28 need 3920 data bytes, found 100"
    ):
        read_idx(tmp_path / "short")
    # an images file with a labels header (1 dimension of 5): too long, not "truncated"
    (tmp_path / "long").write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 5) + b"\0" * 3920)
    with pytest.raises(
        UserError, match=r"long: 3920 data bytes, but its header \(dimensions 5\) describes only 5"
    ):
        read_idx(tmp_path / "long")
    (tmp_path / "tiny").write_bytes(b"\0\0")
    with pytest.raises(UserError, match="too short"):
        read_idx(tmp_path / "tiny")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match=r"bad\.gz: cannot read"):
        read_idx(tmp_path / "bad.gz")
    gz = tmp_path / "plain-named.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"\0\0\x08\x01" + struct.pack(">I", 2) + b"\1\2")
    assert read_idx(gz).tolist() == [1, 2]


def test_prepare_splits_and_validates(mnist_synth, tmp_path):
    out = tmp_path / "p"
    stats = prepare(mnist_synth, out, valid_size=100, seed=0)
    assert {s: v["images"] for s, v in stats["splits"].items()} == {"train": 600, "valid": 100, "test": 200}
    assert (out / ".done").exists()
    train, valid = MnistSplit(out, "train"), MnistSplit(out, "valid")
    assert (
        train.images.shape == (600, 1, 28, 28)
        and 0.0 <= float(train.images.min()) <= float(train.images.max()) <= 1.0
    )
    x, y = train.__getitems__([3, 1])
    assert x.shape == (2, 1, 28, 28) and y.tolist() == [int(train.labels[3]), int(train.labels[1])]
    assert len(train) + len(valid) == 700


def test_prepare_reports_bad_labels_and_missing_files(mnist_synth, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(mnist_synth, src)
    labels = read_idx(src / "t10k-labels-idx1-ubyte").copy()
    labels[5] = 12
    write_idx(src / "t10k-labels-idx1-ubyte", labels)
    with pytest.raises(
        UserError, match=r"t10k-labels-idx1-ubyte: 1 labels outside 0\.\.9 \(first at index 5: 12\)"
    ):
        prepare(src, tmp_path / "out")
    write_idx(src / "t10k-labels-idx1-ubyte", labels[:-3])
    with pytest.raises(UserError, match="197 labels for 200 images"):
        prepare(src, tmp_path / "out")
    (src / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        prepare(src, tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing is written when validation fails"


def test_unprepared_directory_is_refused(tmp_path):
    with pytest.raises(UserError, match="aics vae prepare"):
        MnistSplit(tmp_path, "train")
