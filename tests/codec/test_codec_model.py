"""The codec against Hugging Face's EncodecModel (identical codes, decoded audio within 1e-5), its conv padding
(causality, lengths), the losses and metrics against references, and the alphabet contract."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from genlab.codec.api import CodecAlphabet, load
from genlab.codec.convert import codec_from_hf, convert_dir
from genlab.codec.loss import (
    discriminator_loss,
    feature_matching_loss,
    frequency_loss,
    generator_loss,
    mel_distance,
    multiscale_stft_loss,
    si_sdr,
)
from genlab.codec.model import Codec, CodecConfig, DiscriminatorConfig, ISTFTDecoder, MultiScaleSTFTDiscriminator
from genlab.data.alphabet import Alphabet

transformers = pytest.importorskip("transformers")

# Three corners of EnCodec's options: the 24 kHz model's (causal, reflect, weight norm, conv shortcut), the 48 kHz
# model's layers (non-causal, one-group norm), MusicGen's codec's (non-causal, identity shortcut, zero padding).
HF_VARIANTS = [
    dict(use_causal_conv=True, pad_mode="reflect", norm_type="weight_norm", use_conv_shortcut=True),
    dict(use_causal_conv=False, pad_mode="reflect", norm_type="time_group_norm", use_conv_shortcut=True),
    dict(use_causal_conv=False, pad_mode="constant", norm_type="weight_norm", use_conv_shortcut=False,
         num_residual_layers=2, compress=1),
]


def tiny_hf(seed: int = 0, **variant):
    torch.manual_seed(seed)
    config = transformers.EncodecConfig(
        sampling_rate=4000, num_filters=4, upsampling_ratios=[4, 2, 2], hidden_size=8, codebook_size=16,
        target_bandwidths=[1.0, 2.0, 8.0], num_lstm_layers=2, **variant)
    model = transformers.EncodecModel(config).eval()
    for layer in model.quantizer.layers:  # EncodecModel starts its codebooks at zero: give them values
        layer.codebook.embed.normal_()
    return config, model


@pytest.mark.parametrize("variant", HF_VARIANTS, ids=["24khz", "48khz-layers", "musicgen-layers"])
def test_hf_encodec_parity(variant):
    config, hf = tiny_hf(**variant)
    ours = codec_from_hf(config.to_dict(), hf.state_dict())
    assert ours.cfg.n_q == config.num_quantizers == 8
    x = torch.randn(2, 1, 1013) * 0.3  # a length that is no multiple of the hop (16)
    for bandwidth in config.target_bandwidths:
        with torch.no_grad():
            enc = hf.encode(x, bandwidth=bandwidth)
            reference = hf.decode(enc.audio_codes, enc.audio_scales)[0]
        codes_hf = enc.audio_codes[0]  # (B, n_q, frames)
        n_q = ours.cfg.n_q_for_kbps(bandwidth)
        codes = ours.encode(x, n_q)
        assert codes.shape == codes_hf.shape == (2, n_q, math.ceil(1013 / 16))
        assert torch.equal(codes, codes_hf)
        audio = ours.decode(codes)
        assert audio.shape == reference.shape
        assert (audio - reference).abs().max() < 1e-5
    # The forward pass (reconstruction cut to the input's length) agrees with HF's too.
    with torch.no_grad():
        full = hf(x, bandwidth=config.target_bandwidths[-1]).audio_values
        mine, _ = ours.eval()(x, n_q=ours.cfg.n_q)
    assert (full - mine).abs().max() < 1e-5


def test_convert_directory_then_load(tmp_path):
    config, hf = tiny_hf(seed=1)
    hf.save_pretrained(tmp_path / "hf")
    ckpt = convert_dir(tmp_path / "hf", tmp_path / "ours")
    loaded = load(str(ckpt))
    x = torch.randn(1, 1, 800)
    with torch.no_grad():
        reference = hf.encode(x, bandwidth=8.0).audio_codes[0]
    assert torch.equal(loaded.codec.encode(x, reference.shape[1]), reference)


def test_convert_refuses_the_48khz_procedure_in_one_line(tmp_path):
    from genlab.errors import GenlabError

    config = transformers.EncodecConfig(normalize=True, chunk_length_s=1.0, overlap=0.01)
    with pytest.raises(GenlabError, match="48 kHz"):
        codec_from_hf(config.to_dict(), {})
    (tmp_path / "bad").mkdir()
    with pytest.raises(GenlabError, match="not a Hugging Face EnCodec directory"):
        convert_dir(tmp_path / "bad", tmp_path / "out")


def small_config(**kw) -> CodecConfig:
    base = dict(sample_rate=8000, n_filters=4, ratios=(4, 2), dimension=8, codebook_size=16, n_q=4, lstm_layers=1)
    return CodecConfig(**{**base, **kw})


def test_causal_codec_never_looks_ahead():
    torch.manual_seed(0)
    codec = Codec(small_config(quantizer_dropout=False)).eval()
    x = torch.randn(1, 1, 800)
    y = x.clone()
    y[..., 400:] = torch.randn(1, 1, 400)  # change the future from sample 400 on
    hop = codec.cfg.hop_length
    with torch.no_grad():
        zx, zy = codec.encoder(x), codec.encoder(y)
        # Frame f sees samples up to (f + 1) * hop - 1: frames wholly before 400 are unchanged, the next is not.
        assert torch.equal(zx[..., : 400 // hop], zy[..., : 400 // hop])
        assert not torch.equal(zx[..., 400 // hop], zy[..., 400 // hop])
        dx = codec.decoder(zx)
        dz = codec.decoder(torch.cat([zx[..., :50], zy[..., 50:]], -1))
    assert torch.equal(dx[..., : 50 * hop], dz[..., : 50 * hop])  # the decoder is causal as well


def test_untrained_codec_passes_its_input_through():
    """Every convolution keeps the signal's scale (``model._fan_in_init``), so before any training the output depends
    on the input and the encoder gets gradients. Under PyTorch's default init the speech codec's input-dependent
    output had a standard deviation of 3e-7 against 0.03 for the whole, and its encoder 1e-4 of the decoder's
    gradient."""
    from genlab.codec.task import SPEECH_CODEC

    torch.manual_seed(0)
    codec = Codec(dataclasses.replace(SPEECH_CODEC, n_filters=4, dimension=16))  # its depth, a quarter its width
    x = torch.randn(1, 1, 1280) * 0.05  # speech's scale, four frames
    with torch.no_grad():
        y0 = codec.decoder(codec.encoder(torch.zeros_like(x)))
    y = codec.decoder(codec.encoder(x))
    assert (y - y0).std() > 0.5 * y.std()
    (y - x).abs().mean().backward()
    grad = {name: torch.cat([p.grad.flatten() for p in getattr(codec, name).parameters()]).norm()
            for name in ("encoder", "decoder")}
    assert grad["encoder"] > 0.1 * grad["decoder"]


@pytest.mark.parametrize("causal", [True, False])
def test_lengths_round_up_to_whole_frames(causal):
    codec = Codec(small_config(causal=causal)).eval()
    for n in (1, 7, 8, 9, 100):
        codes = codec.encode(torch.zeros(1, 1, n) + 0.01)
        assert codes.shape == (1, 4, math.ceil(n / 8))
        assert codec.decode(codes).shape == (1, 1, codes.shape[-1] * 8)


def test_istft_decoder_inverts_the_spectrum_of_known_frames():
    """The inverse STFT with "same" padding gives back a signal from its own frames' spectra, every sample of it,
    and a codec with that decoder makes exactly ``hop`` samples a frame."""
    cfg = small_config(decoder="istft", istft_width=8, istft_layers=2)
    decoder = ISTFTDecoder(cfg)
    hop, n_fft = 8, 32
    assert (decoder.hop, decoder.n_fft) == (hop, n_fft)
    signal = torch.randn(2, 20 * hop)
    pad = (n_fft - hop) // 2
    spec = torch.stft(torch.nn.functional.pad(signal, (pad, pad)), n_fft, hop, window=torch.hann_window(n_fft),
                      center=False, return_complex=True).transpose(1, 2)  # (2, 20 frames, 17 bins)
    assert spec.shape[1] == 20
    torch.testing.assert_close(decoder.istft(spec), signal, atol=1e-5, rtol=0)
    codec = Codec(cfg).eval()
    codes = codec.encode(torch.randn(1, 1, 83) * 0.1)
    assert codes.shape == (1, 4, 11) and codec.decode(codes).shape == (1, 1, 88)


def test_stft_encoder_frames_and_reads_magnitudes_only():
    """The frequency-domain encoder gives ``ceil(T / hop)`` frames, as SEANet's does, and reads no phase: a signal
    and its negation have the same STFT magnitudes, so the same frames."""
    torch.manual_seed(0)
    cfg = small_config(encoder="stft", decoder="istft", stft_width=8, stft_layers=1, istft_width=8, istft_layers=1)
    codec = Codec(cfg).eval()
    for n in (1, 7, 8, 9, 100):
        x = torch.randn(2, 1, n) * 0.1
        z = codec.encoder(x)
        assert z.shape == (2, cfg.dimension, math.ceil(n / 8))
        torch.testing.assert_close(codec.encoder(-x), z)
    codec.train()(torch.randn(4, 1, 800) * 0.3)  # k-means start of the codebooks
    codes = codec.eval().encode(torch.randn(1, 1, 83) * 0.1)
    assert codes.shape == (1, 4, 11) and codec.decode(codes).shape == (1, 1, 88)


def test_bitrate_ladder():
    cfg = CodecConfig(sample_rate=16000, ratios=(8, 5, 4, 2), codebook_size=1024, n_q=12)
    assert cfg.frame_rate == 50 and cfg.bits_per_codebook == 10
    assert [cfg.n_q_for_kbps(k) for k in (1.5, 3, 6)] == [3, 6, 12]
    assert cfg.kbps(3) == 1.5
    hf24 = CodecConfig()  # EnCodec 24 kHz: 75 Hz, 1.5 kbps = 2 codebooks, 24 kbps = 32
    assert (hf24.frame_rate, hf24.n_q_for_kbps(1.5), hf24.n_q_for_kbps(24)) == (75, 2, 32)


def test_alphabet_contract():
    torch.manual_seed(0)
    codec = Codec(small_config())
    codec.train()(torch.randn(4, 1, 800) * 0.3)  # k-means start of the codebooks
    codec.eval()
    alphabet = CodecAlphabet.at_kbps(codec, codec.cfg.kbps(3))
    assert isinstance(alphabet, Alphabet)
    assert alphabet.vocab_size == 16 and alphabet.n_q == 3
    assert alphabet.tokens_per_second == codec.cfg.frame_rate * 3 == 3000
    wave = np.random.default_rng(0).standard_normal(1001).astype(np.float32) * 0.3
    codes = alphabet.encode(wave)
    assert codes.shape == (3, 126) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < alphabet.vocab_size
    audio = alphabet.decode(codes)
    assert audio.shape == (126 * 8,)
    assert torch.equal(audio, codec.decode(codes[None])[0, 0])
    # Stereo is mixed down; the codes are those of the mono mix.
    assert torch.equal(alphabet.encode(np.stack([wave, wave])), codes)
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError):
        alphabet.decode(torch.full((3, 5), 16))
    with pytest.raises(GenlabError):
        CodecAlphabet(codec, 5)


def test_mel_spectrogram_matches_transformers_audio_utils():
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    from genlab.data.audio import mel_spectrogram

    x = np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    for sr, n_fft, hop, n_mels in [(16000, 512, 128, 40), (24000, 1024, 256, 80), (16000, 64, 16, 10)]:
        filters = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                                  max_frequency=sr / 2, sampling_rate=sr, norm="slaney", mel_scale="slaney")
        ref = spectrogram(x, window_function(n_fft, "hann", periodic=True), frame_length=n_fft, hop_length=hop,
                          power=1.0, mel_filters=filters, center=True, pad_mode="reflect")
        ours = mel_spectrogram(torch.from_numpy(x), sr, n_fft, hop, n_mels).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_si_sdr_analytic():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(8000)
    noise = rng.standard_normal(8000)
    noise -= noise.mean()
    s -= s.mean()
    noise -= (noise @ s) / (s @ s) * s  # orthogonal to s: SI-SDR = 10 log10(|s|^2 / |n|^2) exactly
    noise *= np.linalg.norm(s) / np.linalg.norm(noise) * 10 ** (-12 / 20)
    est = torch.from_numpy(0.5 * (s + noise))  # the scale does not matter
    assert si_sdr(est, torch.from_numpy(s)).item() == pytest.approx(12.0, abs=1e-3)
    assert si_sdr(torch.from_numpy(3 * s), torch.from_numpy(s)).item() > 100


def test_reconstruction_losses_vanish_only_on_a_perfect_copy():
    x = torch.randn(2, 1, 4000) * 0.1
    assert mel_distance(x, x, 16000).item() == 0
    assert multiscale_stft_loss(x, x).item() == pytest.approx(0, abs=1e-6)
    y = x + 0.01 * torch.randn_like(x)
    assert mel_distance(y, x, 16000).item() > 0 and multiscale_stft_loss(y, x).item() > 0
    # A louder copy is further away than a slightly noisy one, on both.
    assert mel_distance(2 * x, x, 16000) > mel_distance(y, x, 16000)


def test_frequency_loss_weighs_loud_bands_where_the_log_mel_loss_does_not():
    """EnCodec's eq. 2 on two tones (amplitudes 0.5 and 0.01): the same 6 dB deficit costs the log-mel L1 under 3x
    more in the loud band than in the quiet one (the loud tone's leakage reaches more bands) and the
    linear-magnitude loss over 50x more (measured 2.7x and 162x). A gain error ``a`` costs exactly
    ``|a - 1| mean S + (a - 1)^2 mean S^2`` per scale."""
    t = torch.arange(16000) / 16000
    loud, quiet = 0.5 * torch.sin(2 * math.pi * 500 * t), 0.01 * torch.sin(2 * math.pi * 3000 * t)
    x = (loud + quiet)[None, None]
    assert frequency_loss(x, x, 16000).item() == 0
    dull, muffled = (loud / 2 + quiet)[None, None], (loud + quiet / 2)[None, None]
    log_ratio = mel_distance(dull, x, 16000) / mel_distance(muffled, x, 16000)
    linear_ratio = frequency_loss(dull, x, 16000) / frequency_loss(muffled, x, 16000)
    assert log_ratio < 3 and linear_ratio > 50
    from genlab.data.audio import mel_spectrogram

    expected = 0.0
    for n in (32, 64, 128, 256, 512, 1024, 2048):
        m = mel_spectrogram(x, 16000, n, n // 4, 64) / torch.hann_window(n).norm()
        expected += (0.2 * m.mean() + 0.04 * (m**2).mean()).item() / 7
    assert frequency_loss(1.2 * x, x, 16000).item() == pytest.approx(expected, rel=1e-5)


def test_discriminator_and_gan_losses():
    disc = MultiScaleSTFTDiscriminator(DiscriminatorConfig(filters=4, n_ffts=(128, 64)))
    x = torch.randn(3, 1, 2000)
    out = disc(x)
    assert len(out) == 2 and all(len(f) == 5 for _, f in out)  # 4 strided/dilated convs + 1, per scale
    logits = [torch.tensor([2.0, 0.5]), torch.tensor([-0.5])]
    fakes = [torch.tensor([-2.0, 0.0]), torch.tensor([0.5])]
    # Hinge: mean(relu(1 - r)) + mean(relu(1 + f)), averaged over scales.
    expected = ((0 + 0.25) + (0 + 0.5) + (1.5) + (1.5)) / 2
    assert discriminator_loss(logits, fakes).item() == pytest.approx(expected)
    assert generator_loss(fakes).item() == pytest.approx(((3 + 1) / 2 + 0.5) / 2)
    assert discriminator_loss(logits, fakes, "lsgan").item() == pytest.approx(
        (((1 + 0.25) / 2 + (4 + 0) / 2) + (2.25 + 0.25)) / 2)
    feats = [f for _, f in out]
    assert feature_matching_loss(feats, feats).item() == 0
