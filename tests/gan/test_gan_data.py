"""Fashion-MNIST's IDX reader (on the Debian package when installed, and on files written here) and the data the
GAN presets train on."""

import gzip

import numpy as np
import pytest

from genlab.data import fashion_mnist as fm
from genlab.errors import GenlabError


def _write_idx(path, magic, array):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_set(directory, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = fm.FILES[split]
        _write_idx(directory / images, 0x803, rng.integers(0, 256, (n, 28, 28)))
        _write_idx(directory / labels, 0x801, np.arange(n) % 10)


def test_idx_reader_shapes_padding_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_FASHION_MNIST", str(tmp_path))
    with pytest.raises(GenlabError, match="not installed"):
        fm.load_fashion_mnist("train")
    _fake_set(tmp_path)
    native = fm.load_fashion_mnist("train")
    padded = fm.load_fashion_mnist("train", size=32)
    assert native.images.shape == (6, 1, 28, 28) and padded.images.shape == (6, 1, 32, 32)
    assert np.array_equal(padded.images[:, :, 2:30, 2:30], native.images) and padded.images[:, :, :2].max() == 0
    assert native.labels.tolist() == list(range(6)) and native.categories[1] == "Trouser"
    assert len(fm.load_fashion_mnist("all")) == 10
    _write_idx(tmp_path / fm.FILES["test"][0], 0x801, np.zeros((4, 28, 28)))  # wrong magic
    with pytest.raises(GenlabError, match="not an IDX file"):
        fm.load_fashion_mnist("test")
    with gzip.open(tmp_path / fm.FILES["test"][0], "wb") as f:  # header says 4 images, 1 is there
        f.write((0x803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (4, 28, 28)) + bytes(784))
    with pytest.raises(GenlabError, match="header says"):
        fm.load_fashion_mnist("test")
    (tmp_path / fm.FILES["train"][1]).write_bytes(b"not gzip")
    with pytest.raises(GenlabError, match="gzip"):
        fm.load_fashion_mnist("train")
    with pytest.raises(GenlabError, match="split"):
        fm.load_fashion_mnist("validation")


@pytest.mark.skipif(not fm.available(), reason="dataset-fashion-mnist is not installed (scripts/install.d/gan.sh)")
def test_the_installed_fashion_mnist():
    train, test = fm.load_fashion_mnist("train"), fm.load_fashion_mnist("test", 32)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 32, 32)
    assert np.bincount(train.labels.numpy()).tolist() == [6000] * 10  # balanced classes, as published
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10
    assert float(train.images.float().mean()) / 255 == pytest.approx(0.2860, abs=5e-4)  # the published pixel mean
