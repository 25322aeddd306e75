"""genlab's voice-activity gate against Silero's own TorchScript model (skipped without the silero-vad package):
the same architecture gives the same per-chunk speech probabilities, long files in blocks give exactly the
probabilities of one call, and silence has no speech regions."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.asr.vad import CHUNK, SileroVAD, load_vad, speech_regions

JFK = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "jfk.flac"
needs_silero = pytest.mark.skipif(importlib.util.find_spec("silero_vad") is None, reason="silero-vad not installed")


def _speech() -> torch.Tensor:
    from genlab.data.audio import load_audio

    if not JFK.exists():
        pytest.skip("jfk.flac not present")
    return torch.from_numpy(load_audio(JFK))


@needs_silero
def test_probabilities_match_silero_torchscript():
    import silero_vad

    # The TorchScript model of the package carries other weights (v6) than its safetensors file (v5, which genlab
    # loads): load the TorchScript weights into genlab's module so both run the same numbers.
    ref = torch.jit.load(Path(silero_vad.__file__).parent / "data" / "silero_vad.jit")
    names = {
        "stft.forward_basis_buffer": "stft_conv.weight",
        "decoder.decoder.2.weight": "final_conv.weight",
        "decoder.decoder.2.bias": "final_conv.bias",
        **{f"decoder.rnn.{p}": f"lstm_cell.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
        **{f"encoder.{i}.reparam_conv.{p}": f"conv{i + 1}.{p}" for i in range(4) for p in ("weight", "bias")},
    }
    model = SileroVAD()
    model.load_state_dict({names[k]: v for k, v in ref._model.state_dict().items()})
    model.eval()
    audio = _speech()
    ref.reset_states()
    with torch.no_grad():
        expected = torch.stack([ref(chunk, 16000)[0, 0] for chunk in audio[: len(audio) // CHUNK * CHUNK].split(CHUNK)])
    got, _ = model(audio)
    assert expected.max() > 0.9 and expected.min() < 0.1  # speech and pauses both present
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@needs_silero
def test_blocks_carry_state_exactly():
    model, audio = load_vad(), _speech()
    whole, _ = model(audio)
    parts, state = [], None
    for i in range(0, len(audio), 31 * CHUNK):  # about 1 s blocks
        p, state = model(audio[i : i + 31 * CHUNK], state)
        parts.append(p)
    torch.testing.assert_close(torch.cat(parts), whole, atol=1e-6, rtol=0)


@needs_silero
def test_regions_cover_speech_and_silence_has_none():
    audio = _speech().numpy()
    assert speech_regions(np.zeros(16000 * 20, np.float32)) == []
    padded = np.concatenate([np.zeros(16000 * 5, np.float32), audio, np.zeros(16000 * 5, np.float32)])
    regions = speech_regions(padded, block_seconds=3.0)
    assert regions and regions[0][0] > 4.5 and regions[-1][1] < 5 + len(audio) / 16000 + 0.5, regions
    assert regions == speech_regions(padded)  # the block size does not change the answer
