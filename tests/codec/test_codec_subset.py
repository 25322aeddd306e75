"""The balanced subset of the codec corpus that travels to a GPU machine (scripts/gpu/pack_codec.sh): whole clips,
about the same seconds from every speaker, the same cache format (the loader reads it unchanged), an honest
manifest, and a lossless packing checked against the manifest's checksums."""

import json

import numpy as np
import pytest

from genlab.codec import data
from genlab.codec.data import SpeechCorpus, corpus_dir, delta_planes, load, pack, subset, undo_delta_planes, unpack
from genlab.data.cache import write_manifest
from genlab.errors import GenlabError

SR = 100  # samples a second: one "second" is 100 samples, so the arrays stay tiny
SPEAKERS = {  # speaker: (split, clip lengths in samples)
    "codec2-a": ("train", [250, 100, 300, 150, 200]),
    "codec2-b": ("train", [120, 90]),  # 2.1 s in all: less than the cap
    "codec2-c": ("train", [900]),  # one long clip: taken whole
    "codec2-d": ("test", [100, 100, 100, 100]),
}


def full_corpus(directory) -> SpeechCorpus:
    """A built corpus of random int16 noise with a manifest written like genlab.codec.data.build's."""
    rng = np.random.default_rng(0)
    arrays, entries, offsets = {"train": [], "test": []}, [], {"train": 0, "test": 0}
    for speaker, (split, lengths) in SPEAKERS.items():
        for i, n in enumerate(lengths):
            arrays[split].append(rng.integers(-32768, 32768, n, dtype=np.int16))
            entries.append({"path": f"/voices/{speaker}/{i}.wav", "source": "codec2", "speaker": speaker,
                            "split": split, "offset": offsets[split], "length": n})
            offsets[split] += n
    directory.mkdir(parents=True)
    for split, parts in arrays.items():
        np.save(directory / f"{split}.npy", np.concatenate(parts))
    write_manifest(directory, ["train.npy", "test.npy"], data._info(SR, entries, {}, frozenset({"codec2-d"})))
    return SpeechCorpus(directory, json.loads((directory / "manifest.json").read_text()))


def test_every_speaker_gives_whole_clips_up_to_the_same_seconds(tmp_path):
    full = full_corpus(tmp_path / "full")
    part = subset(full, tmp_path / "part", seconds_per_speaker=4, test_seconds_per_speaker=2)
    seconds = {name: s["seconds"] for name, s in part.manifest["speakers"].items()}
    assert 4 <= seconds["codec2-a"] < 4 + 3  # at least the cap, over it by less than one clip
    assert seconds["codec2-b"] == 2.1 and seconds["codec2-c"] == 9.0 and seconds["codec2-d"] == 2.0
    # Whole clips, in the full corpus's order, with the very samples of the full corpus.
    order = [c["path"] for c in full.manifest["clips"]]
    for split in ("train", "test"):
        clips = part.clips(split)
        assert [order.index(c["path"]) for c in clips] == sorted(order.index(c["path"]) for c in clips)
        source = {c["path"]: c for c in full.clips(split)}
        assert all(np.array_equal(part.audio(c), full.audio(source[c["path"]])) for c in clips)
    assert len(part.train) == sum(c["length"] for c in part.clips("train"))
    note = part.manifest["subset"]
    assert note["of"] == "full" and note["of_seconds"] == {"train": 21.1, "test": 4.0}
    assert "3 speakers" in note["note"] and part.manifest["test_speakers"] == ["codec2-d"]
    # The choice is a function of the seed alone.
    again = subset(full, tmp_path / "again", seconds_per_speaker=4, test_seconds_per_speaker=2)
    assert again.manifest["clips"] == part.manifest["clips"]
    with pytest.raises(GenlabError, match="cannot replace"):
        subset(full, full.dir, 4, 2)


def test_delta_planes_are_lossless_at_the_int16_extremes():
    x = np.array([0, 32767, -32768, 32767, -1, 1, -32768, -32768, 12345], np.int16)
    planes = delta_planes(x)
    assert planes.dtype == np.uint8 and planes.shape == (2, len(x))
    assert np.array_equal(undo_delta_planes(planes), x)
    noise = np.random.default_rng(1).integers(-32768, 32768, 10_000, dtype=np.int16)
    assert np.array_equal(undo_delta_planes(delta_planes(noise)), noise)


def test_packed_subset_unpacks_where_the_loader_looks_and_checks_its_checksums(tmp_path, monkeypatch):
    full = full_corpus(tmp_path / "full")
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "carried"))
    directory = corpus_dir(SR)
    built = subset(full, directory, seconds_per_speaker=4, test_seconds_per_speaker=2)
    train = np.array(built.train)
    pack(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["manifest.json", "test.delta.npy", "train.delta.npy"]
    unpack(directory)
    corpus = load(SR)  # what CodecTask reads: the loader finds the subset as if it were the corpus
    assert np.array_equal(corpus.train, train) and corpus.manifest["subset"]["of"] == "full"
    assert len(corpus.test_clips()) == 2
    # A damaged carried file is refused, not trained on.
    pack(directory)
    planes = np.load(directory / "train.delta.npy")
    planes[1, 7] ^= 1
    np.save(directory / "train.delta.npy", planes)
    with pytest.raises(GenlabError, match="checksums"):
        unpack(directory)


def test_the_codec_evaluation_measures_each_octave_band_s_level():
    """benchmarks/codec_eval.py's band levels: a clip at half its amplitude has lost 6.02 dB in every band; a clip
    low-passed at 1 kHz keeps the bands below and loses those above."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    codec_eval = pytest.importorskip("codec_eval")
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    half = codec_eval.band_levels(0.5 * x, x, 16000)
    assert list(half) == [f"band_db_{lo}" for lo in codec_eval.BANDS_HZ]
    assert all(abs(v + 6.0206) < 1e-6 for v in half.values())
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(len(x), 1 / 16000) >= 1000] = 0
    low = codec_eval.band_levels(np.fft.irfft(spectrum, n=len(x)).astype(np.float32), x, 16000)
    assert all(abs(low[f"band_db_{lo}"]) < 1e-3 for lo in (125, 250, 500))
    assert all(low[f"band_db_{lo}"] < -60 for lo in (1000, 2000, 4000))
