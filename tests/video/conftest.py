"""A small real sprite bank shared by the video tests: OpenMoji rendered into a temporary cache."""

import pytest

from genlab.video.data import SpriteClipConfig, load_bank


@pytest.fixture(scope="session")
def video_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def sprite_cfg():
    # 600 of OpenMoji's glyphs spread over the whole set: enough for 16 training and 8 held-out sprites.
    return SpriteClipConfig(frames=16, sprites=16, held_out=8, emoji_limit=600)


@pytest.fixture(scope="session")
def bank(video_cache, sprite_cfg):
    return load_bank(sprite_cfg)
