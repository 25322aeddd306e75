"""``genlab classify``, ``search`` and ``embed`` end to end on a tiny random CLIP: outputs agree with the Python
API, the index is reused by content, bad files cost one warning line each and are counted, bad options one error."""

import io
import json

import numpy as np
import pytest
import torch
from clip_images import write_images
from PIL import Image

from genlab.cli import main
from genlab.clip.images import read_image, to_square
from genlab.clip.pipeline import embed_images, embed_texts, load


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))


def api_embeddings(ckpt, paths):
    loaded = load(str(ckpt))
    squares = [to_square(read_image(p).image, 16, "crop") for p in paths]
    return loaded, embed_images(loaded.model, torch.from_numpy(np.stack(squares)))


def test_search_ranks_by_cosine_and_reuses_the_index(tiny_ckpt, tmp_path, capsys):
    paths = write_images(tmp_path / "pics", n=6)
    assert main(["search", "a red apple", "--images", str(tmp_path / "pics"), "--top", "3", "--model", str(tiny_ckpt),
                 "--no-progress"]) == 0
    out, err = capsys.readouterr()
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert len(lines) == 3 and "6 files: 6 embedded, 0 from the index, 0 skipped" in err
    loaded, emb = api_embeddings(tiny_ckpt, paths)
    scores = emb @ embed_texts(loaded.model, loaded.tokenizer, ["a red apple"])[0]
    best = scores.argsort(descending=True)[:3]
    assert [row[1] for row in lines] == [str(paths[i]) for i in best]
    assert np.allclose([float(row[0]) for row in lines], scores[best].numpy(), atol=1e-4)

    # Renamed: found by content. Edited: embedded again.
    paths[0].rename(tmp_path / "pics" / "renamed.png")
    Image.new("RGB", (9, 9), "blue").save(paths[1])
    assert main(["search", "cat", "--images", str(tmp_path / "pics"), "--model", str(tiny_ckpt), "--no-progress"]) == 0
    assert "6 files: 1 embedded, 5 from the index" in capsys.readouterr().err


def test_bad_files_warn_once_each_and_are_counted(tiny_ckpt, tmp_path, capsys):
    pics = tmp_path / "pics"
    write_images(pics, n=2)
    (pics / "empty.jpg").write_bytes(b"")
    (pics / "readme.txt").write_text("not an image")
    b = io.BytesIO()
    Image.new("RGB", (30, 30), "red").save(b, "JPEG")
    (pics / "cut.jpg").write_bytes(b.getvalue()[:200])
    Image.new("CMYK", (12, 12)).save(pics / "print.jpg")
    frames = [Image.new("RGB", (8, 8), c) for c in ("blue", "green")]
    frames[0].save(pics / "anim.gif", save_all=True, append_images=frames[1:])
    assert main(["classify", str(pics), "--labels", "cat,dog", "--model", str(tiny_ckpt), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 5, err
    assert sum("skipped" in w for w in warnings) == 3 and sum("converted" in w for w in warnings) == 2
    assert "7 files: 4 embedded, 0 from the index, 3 skipped, 2 converted" in err
    assert len(out.strip().splitlines()) == 4  # the usable images, one line each


def test_classify_probabilities_match_the_api(tiny_ckpt, tmp_path, capsys):
    from genlab.clip.zeroshot import class_embeddings, zero_shot_probs

    paths = write_images(tmp_path / "pics", n=3)
    assert main(["classify", *map(str, paths), "--labels", "cat, dog ,car", "--top", "3", "--template",
                 "a picture of a {}.", "--model", str(tiny_ckpt), "--no-progress", "--json",
                 str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    loaded, emb = api_embeddings(tiny_ckpt, paths)
    probs = zero_shot_probs(emb, class_embeddings(loaded.model, loaded.tokenizer, ["cat", "dog", "car"],
                                                  ["a picture of a {}."]), loaded.model.temperature().item())
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["weights_hash"] == loaded.weights_hash and report["templates"] == ["a picture of a {}."]
    for i, line in enumerate(out):
        got = {r["label"]: r["p"] for r in report["results"][i]["labels"]}
        assert line.startswith(str(paths[i]))
        assert np.allclose([got[k] for k in ("cat", "dog", "car")], probs[i].numpy(), atol=1e-5)


def test_embed_texts_and_images_to_npy_with_provenance(tiny_ckpt, tmp_path, capsys):
    assert main(["embed", "--texts", "a cat", "a dog", "--out", str(tmp_path / "t.npy"), "--model",
                 str(tiny_ckpt)]) == 0
    emb = np.load(tmp_path / "t.npy")
    meta = json.loads((tmp_path / "t.json").read_text())
    loaded = load(str(tiny_ckpt))
    assert np.allclose(emb, embed_texts(loaded.model, loaded.tokenizer, ["a cat", "a dog"]).numpy(), atol=1e-6)
    assert meta["texts"] == ["a cat", "a dog"] and meta["weights_hash"] == loaded.weights_hash
    write_images(tmp_path / "pics", n=2)
    assert main(["embed", "--images", str(tmp_path / "pics"), "--out", str(tmp_path / "i.npy"), "--model",
                 str(tiny_ckpt), "--no-progress"]) == 0
    assert np.load(tmp_path / "i.npy").shape == (2, 16)
    assert np.allclose(np.linalg.norm(np.load(tmp_path / "i.npy"), axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("argv,message", [
    (["classify", "IMG", "--labels", "cat,,dog"], "non-empty class names"),
    (["classify", "IMG", "--labels", "cat,cat"], "appears twice"),
    (["classify", "IMG", "--labels", "cat", "--template", "no slot"], "must contain {}"),
    (["classify", "IMG", "--labels", "cat", "--top", "0"], "--top must be at least 1"),
    (["search", " ", "--images", "IMG"], "query is empty"),
    (["search", "cat", "--images", "/nonexistent/dir"], "no such file or directory"),
    (["embed", "--texts", "a", "--out", "x.txt"], "use a .npy file name"),
    (["embed", "--texts", "a", "--out", "/proc/forbidden/x.npy"], "cannot write"),
    (["classify", "IMG", "--labels", "cat", "--model", "/nonexistent/model"], "model not found"),
])
def test_bad_options_fail_in_one_line(tiny_ckpt, tmp_path, capsys, argv, message):
    write_images(tmp_path / "pics", n=1)
    argv = [a.replace("IMG", str(tmp_path / "pics")) for a in argv]
    if "--model" not in argv:
        argv += ["--model", str(tiny_ckpt)]
    assert main(argv + ["--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
