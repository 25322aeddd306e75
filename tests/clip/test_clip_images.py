"""Reading user images: every bad file is skipped with a reason, every unusual one converted with a note."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from genlab.clip import images
from genlab.clip.images import read_image, to_square


def png_bytes(im):
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def bomb_png(width, height):
    """A few dozen bytes of PNG header claiming a ``width`` x ``height`` RGB canvas."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def bad(tmp_path):
    red = Image.new("RGB", (40, 30), "red")
    files = {
        "empty.png": b"",
        "notes.txt": b"this is not an image\n",
        "half.png": png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))[:300],
        "bomb.png": bomb_png(100_000, 100_000),  # Pillow's own limit
        "wide.png": bomb_png(10_000, 8_000),  # under Pillow's limit, over genlab's
    }
    b = io.BytesIO()
    red.save(b, "JPEG")
    files["half.jpg"] = b.getvalue()[: len(b.getvalue()) // 2]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("name,reason", [("empty.png", "empty file"), ("notes.txt", "not an image"),
                                         ("half.png", "truncated"), ("half.jpg", "truncated"),
                                         ("bomb.png", "decompression bomb"), ("wide.png", "decompression bomb")])
def test_bad_files_are_skipped_with_a_reason(bad, name, reason):
    result = read_image(bad / name)
    assert result.image is None and reason in result.skipped


def test_unreadable_and_broken_link(tmp_path, monkeypatch):
    (tmp_path / "link.png").symlink_to(tmp_path / "missing.png")
    assert "not a regular file" in read_image(tmp_path / "link.png").skipped
    ok = tmp_path / "locked.png"
    ok.write_bytes(png_bytes(Image.new("RGB", (4, 4))))

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(ok))

    monkeypatch.setattr(images, "open", denied, raising=False)  # root reads any file: deny it here instead
    assert read_image(ok).skipped == "permission denied"


def test_cmyk_16bit_animated_transparent_are_converted(tmp_path):
    Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red in CMYK
    grey16 = Image.fromarray(np.full((8, 8), 65535 // 2, dtype=np.uint16))
    grey16.save(tmp_path / "grey16.png")
    frames = [Image.new("RGB", (8, 8), c) for c in ("blue", "green")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGBA", (6, 6), (0, 0, 0, 0)).save(tmp_path / "clear.png")

    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert "CMYK" in cmyk.note and cmyk.image.mode == "RGB"
    r, g, b = np.asarray(cmyk.image).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60
    grey = read_image(tmp_path / "grey16.png")
    assert "16-bit" in grey.note and abs(int(np.asarray(grey.image)[0, 0, 0]) - 127) <= 1  # scaled, not clipped
    anim = read_image(tmp_path / "anim.gif")
    assert "2 frames" in anim.note and tuple(np.asarray(anim.image)[0, 0]) == (0, 0, 255)  # the first frame
    clear = read_image(tmp_path / "clear.png")
    assert clear.note == "" and tuple(np.asarray(clear.image)[0, 0]) == (255, 255, 255)  # on white


def test_to_square_crop_and_pad():
    im = Image.new("RGB", (40, 20), "white")
    im.paste(Image.new("RGB", (10, 20), "black"), (0, 0))  # a black band on the left quarter
    crop = to_square(im, 8, "crop")  # centre crop drops the left band
    pad = to_square(im, 8, "pad")  # padding keeps it, with white above and below
    assert crop.shape == pad.shape == (3, 8, 8)
    assert crop.min() > 200
    assert pad[:, 4, 0].max() < 60 and pad[:, 0, :].min() > 200
