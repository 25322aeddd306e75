"""The shipped emoji feature network: pinned hash, refusal of a changed file, features, and the FID report."""

import shutil

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.eval import features as FN
from genlab.eval.fid import extract_features, fid_report


def test_shipped_network_matches_pinned_hash_and_embeds():
    net = FN.load_feature_net()
    assert FN.sha256_file(FN.ASSET) == FN.ASSET_SHA256
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 32, 32), generator=g, dtype=torch.uint8)
    feats = extract_features(images, batch_size=4)
    assert feats.shape == (6, net.cfg.embed_dim) and np.isfinite(feats).all()
    # GroupNorm: an image's features do not depend on its batch.
    alone = extract_features(images[2:3])
    assert np.allclose(alone, feats[2:3], atol=1e-5)
    # 64 px images are resized to the network's 32 px.
    big = images.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert extract_features(big).shape == feats.shape
    info = FN.feature_net_info()
    assert info["n_train"] > 0 and "command" in info


def test_tampered_or_missing_network_is_refused(tmp_path):
    bad = tmp_path / "features.safetensors"
    shutil.copy(FN.ASSET, bad)
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0x01  # one bit in the last weight
    bad.write_bytes(bytes(data))
    with pytest.raises(GenlabError, match="does not match the pinned") as e:
        FN.load_feature_net(bad)
    assert "\n" not in str(e.value)
    with pytest.raises(GenlabError, match="missing"):
        FN.load_feature_net(tmp_path / "nope.safetensors")
    with pytest.raises(GenlabError, match="uint8"):
        extract_features(torch.zeros(2, 3, 32, 32))


def test_fid_report_on_copied_training_images(tmp_path, monkeypatch):
    from genlab.data.emoji import load_emoji

    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    limit = 600  # a spread-out subset of the emoji set keeps this test at a few seconds
    train = load_emoji(32, "train", limit=limit)
    copies = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:200]]
    report = fid_report(copies, n=150, seed=0, limit=limit)
    assert report["n"] == 150 and report["n_floor"] == 150 and report["seed"] == 0
    assert report["feature_net_sha256"] == FN.ASSET_SHA256
    # Real training images are as good as the floor's: same FID scale, and a real-looking precision.
    assert 0 < report["fid"] < 3 * report["fid_floor"] and report["precision"] > 0.5
    # ... and every one of them is flagged as a copy of a training image.
    assert report["memorisation"]["pixel"]["frac_closer_than_p5"] == 1.0
    assert report["memorisation"]["feature"]["frac_closer_than_p5"] == 1.0
    with pytest.raises(GenlabError):
        fid_report(copies, n=500, limit=limit)
