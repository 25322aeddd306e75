"""The three TTS tasks train with the shared trainer on a tiny espeak corpus (a few steps: the loss is finite and
moves, checkpoints load back into `genlab speak`)."""

import copy

import pytest
import torch

from genlab.train import Trainer, seed_everything

pytestmark = pytest.mark.usefixtures("espeak")


@pytest.fixture(scope="module")
def corpus():
    from genlab.tts.data import TTSCorpusSize, build

    return build(TTSCorpusSize(train=12, test=2), progress=False)


def test_corpus_durations_match_mels(corpus):
    for u in corpus.utterances("train")[:5]:
        it = corpus.item("train", u)
        assert int(it["durations"].sum()) == len(it["mel"]) == u["n_frames"]
        assert len(it["audio"]) == u["n_samples"] and it["mel"].shape[1] == 80
    assert corpus.manifest["voices"][0] == "en-us" and len(corpus.vocabulary) > 20


def test_acoustic_vocoder_speaker_train_and_speak(corpus, tmp_path, monkeypatch):
    from genlab.cli import main
    from genlab.tts.speaker import SPEAKER_PRESETS, SpeakerTask, VoicePool
    from genlab.tts.task import ACOUSTIC_PRESETS, VOCODER_PRESETS, AcousticTask, VocoderTask

    seed_everything(0)
    run = copy.deepcopy(SPEAKER_PRESETS["tiny"])
    pool = VoicePool.build("train", True, None, corpus)
    Trainer(SpeakerTask(run, pool, None), run.train, tmp_path / "speaker").fit()

    run = copy.deepcopy(ACOUSTIC_PRESETS["tiny"])
    run.model.speaker_dim, run.speaker_encoder, run.train.steps = 16, str(tmp_path / "speaker"), 6
    task = AcousticTask(run, corpus)
    assert torch.allclose(task.model.voices.norm(dim=-1)[0], torch.tensor(1.0))  # voice 0's mean d-vector
    import genlab.tts.voice

    # A second task with the same encoder (a resume) reads the d-vectors the first saved beside the corpus.
    monkeypatch.setattr(genlab.tts.voice, "dvectors", lambda *a: pytest.fail("d-vectors computed again"))
    assert torch.equal(AcousticTask(copy.deepcopy(run), corpus).model.voices, task.model.voices)
    monkeypatch.undo()
    before = task.loss(task.batch(torch.arange(4)), "main")[0].item()
    trainer = Trainer(task, run.train, tmp_path / "acoustic")
    trainer.fit()
    after = task.loss(task.batch(torch.arange(4)), "main")[0].item()
    assert after < before

    run = copy.deepcopy(VOCODER_PRESETS["tiny"])
    run.train.steps = 2
    Trainer(VocoderTask(run, corpus), run.train, tmp_path / "vocoder").fit()

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for part in ("acoustic", "vocoder", "speaker"):
        (bundle / part).symlink_to(tmp_path / part)
    assert main(["speak", "It works.", "--model", str(bundle), "--out", str(tmp_path / "o.wav")]) == 0


def test_vocos_vocoder_trains_and_speaks(corpus, bundle, tmp_path):
    """The Vocos vocoder trains with the same task (its loss finite, its weights moved) and a bundle holding it
    speaks, the provenance record naming it."""
    from genlab.cli import main
    from genlab.provenance.record import read_record
    from genlab.tts.task import VOCODER_PRESETS, VocoderTask

    seed_everything(0)
    run = copy.deepcopy(VOCODER_PRESETS["tiny-vocos"])
    task = VocoderTask(run, corpus)
    before = {k: v.clone() for k, v in task.generator.state_dict().items()}
    Trainer(task, run.train, tmp_path / "vocoder").fit()
    assert any(not torch.equal(before[k], v) for k, v in task.generator.state_dict().items())
    b = task.batch(torch.arange(2))
    assert task.generator(b[0]).shape == b[1][:, 0].shape
    assert torch.isfinite(task.loss(b, "gen")[0])

    mixed = tmp_path / "bundle"
    mixed.mkdir()
    (mixed / "acoustic").symlink_to(bundle / "acoustic")
    (mixed / "vocoder").symlink_to(tmp_path / "vocoder")
    assert main(["speak", "It works.", "--model", str(mixed), "--out", str(tmp_path / "o.wav")]) == 0
    assert read_record(tmp_path / "o.wav")["vocoder"] == "vocos"
