"""The TTS modules: HiFi-GAN's generator equals transformers' SpeechT5HifiGan on the same random weights; the
length regulator repeats each phoneme exactly its duration; FastSpeech shapes and masks; the speaker encoder's
d-vectors are unit vectors and match resemblyzer's network on the same weights; the Vocos vocoder makes a hop of
samples a frame."""

import pytest
import torch

from genlab.tts.model import (
    PAD,
    PAUSE,
    AcousticConfig,
    FastSpeech,
    HiFiGAN,
    LengthRegulator,
    SpeakerConfig,
    SpeakerEncoder,
    VocoderConfig,
    VocosVocoder,
    build_vocoder,
)


def test_hifigan_matches_transformers():
    from transformers import SpeechT5HifiGan, SpeechT5HifiGanConfig

    torch.manual_seed(0)
    hf_cfg = SpeechT5HifiGanConfig(model_in_dim=20, upsample_initial_channel=16, upsample_rates=[4, 2],
                                   upsample_kernel_sizes=[8, 4], resblock_kernel_sizes=[3, 5],
                                   resblock_dilation_sizes=[[1, 3], [1, 2]], normalize_before=False)
    ref = SpeechT5HifiGan(hf_cfg).eval()
    ours = HiFiGAN(VocoderConfig(n_mels=20, upsample_initial_channel=16, upsample_rates=(4, 2),
                                 upsample_kernel_sizes=(8, 4), resblock_kernel_sizes=(3, 5),
                                 resblock_dilation_sizes=((1, 3), (1, 2)))).eval()
    state = {k: v for k, v in ref.state_dict().items() if k not in ("mean", "scale")}
    ours.load_state_dict(state, strict=True)
    mel = torch.randn(2, 20, 13)
    with torch.no_grad():
        expected = ref(mel.transpose(1, 2))
        got = ours(mel)
    assert got.shape == (2, 13 * 8)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_vocos_vocoder_makes_a_hop_a_frame_and_kinds_are_checked():
    cfg = VocoderConfig(n_mels=20, kind="vocos", vocos_width=16, vocos_layers=2)
    vocoder = build_vocoder(cfg)
    assert isinstance(vocoder, VocosVocoder) and (vocoder.hop, vocoder.n_fft) == (256, 1024)
    for frames in (1, 13):
        assert vocoder(torch.randn(2, 20, frames)).shape == (2, frames * 256)
    assert isinstance(build_vocoder(VocoderConfig(n_mels=20)), HiFiGAN)
    with pytest.raises(ValueError, match="unknown vocoder kind"):
        build_vocoder(VocoderConfig(kind="wavenet"))


def test_length_regulator_repeats_by_duration():
    x = torch.arange(2 * 3 * 1, dtype=torch.float32).view(2, 3, 1) + 1  # (B, N, 1): values 1..6
    d = torch.tensor([[2, 0, 3], [1, 1, 0]])
    out, valid = LengthRegulator()(x, d)
    assert out.shape == (2, 5, 1)
    assert out[0, :, 0].tolist() == [1, 1, 3, 3, 3]
    assert out[1, :, 0].tolist() == [4, 5, 0, 0, 0] and valid[1].tolist() == [True, True, False, False, False]


def _tiny(**kw):
    return AcousticConfig(phonemes=list("abcdefg"), n_speakers=3, dim=32, n_head=2, encoder_layers=1,
                          decoder_layers=1, predictor_channels=16, postnet_channels=16, n_mels=10, **kw)


def test_fastspeech_shapes_masks_and_padding_independence():
    torch.manual_seed(0)
    model = FastSpeech(_tiny(speaker_dim=8)).eval()
    ph = torch.tensor([[3, 4, PAUSE, 5], [3, 4, PAUSE, PAD]])
    st = torch.zeros_like(ph)
    d = torch.tensor([[2, 3, 1, 2], [2, 3, 1, 0]])
    spk = torch.tensor([0, 0])
    mel, post, log_d, valid = model(ph, st, spk, durations=d, dvector=torch.randn(1, 8).expand(2, 8))
    assert mel.shape == (2, 8, 10) and post.shape == mel.shape and log_d.shape == (2, 4)
    assert valid.sum(1).tolist() == [8, 6]
    assert torch.all(post[1, 6:] == 0)
    # A sequence padded in a batch gives the same frames as alone.
    alone = model(ph[1:, :3], st[1:, :3], spk[1:], durations=d[1:, :3], dvector=torch.zeros(1, 8))[0]
    batch = model(ph, st, spk, durations=d, dvector=torch.zeros(2, 8))[0]
    torch.testing.assert_close(alone[0], batch[1, :6], rtol=1e-4, atol=1e-5)


def test_predicted_durations_keep_spoken_phonemes():
    ph = torch.tensor([[3, PAUSE, 4, PAD]])
    log_d = torch.tensor([[-5.0, -5.0, 1.0, 3.0]])
    frames = FastSpeech.frames(log_d, ph)
    assert frames.tolist() == [[1, 0, 2, 0]]  # spoken >= 1 frame, a pause may vanish, padding never speaks
    assert FastSpeech.frames(log_d, ph, pace=2.0)[0, 2] == 1


def test_speaker_encoder_unit_vectors_and_resemblyzer_layout():
    torch.manual_seed(0)
    enc = SpeakerEncoder(SpeakerConfig()).eval()
    e = enc(torch.randn(3, 50, 40))
    assert e.shape == (3, 256)
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))
    # resemblyzer's VoiceEncoder names: lstm.*, linear.* (same shapes), so its weights load one to one.
    names = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert names["lstm.weight_ih_l0"] == (1024, 40) and names["linear.weight"] == (256, 256)
