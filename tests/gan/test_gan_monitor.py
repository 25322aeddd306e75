"""The collapse monitor tells a spread of real emoji from one emoji repeated (on a 200-glyph rendered subset)."""

import pytest
import torch

from genlab.data.emoji import load_emoji
from genlab.gan.monitor import CollapseMonitor


@pytest.fixture
def subset(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    return load_emoji(32, "all", limit=200)


def test_collapse_signals(subset):
    monitor = CollapseMonitor("emoji32", n_real=120, seed=0, real=subset)
    spread = monitor.measure_images(subset.images[torch.arange(1, 200, 2)])  # 100 glyphs, mostly not the reference
    collapsed = monitor.measure_images(subset.images[7:8].repeat(100, 1, 1, 1))
    assert spread["collapse/coverage"] > 0.4 and collapsed["collapse/coverage"] < 0.05
    assert spread["collapse/recall"] > 0.4 and collapsed["collapse/recall"] < 0.05
    assert collapsed["collapse/classes_reached"] == 1 < spread["collapse/classes_reached"]
    assert collapsed["collapse/class_tv"] > 0.5 > spread["collapse/class_tv"]
    assert collapsed["collapse/pixel_std"] == 0 < spread["collapse/pixel_std"]
    assert abs(sum(spread["collapse/class_hist_fake"]) - 1) < 1e-3 and spread["collapse/n_real"] == 120
    with pytest.raises(ValueError, match="no feature network"):
        CollapseMonitor("fashion32")
