"""genlab's Whisper against the reference implementations on tiny random models (no weight packages needed):
logits to 1e-5 and identical greedy tokens vs openai-whisper and HF transformers; round trips of each format."""

import json
import shutil
import struct
from dataclasses import asdict

import pytest
import torch

from genlab.asr.decoding import DecodingOptions, decode
from genlab.asr.fast import FastWhisper
from genlab.asr.model import Whisper, WhisperConfig
from genlab.errors import GenlabError
from genlab.interop.whisper import (
    WhisperWeights,
    build_model,
    from_ct2,
    from_hf,
    from_openai,
    load_whisper,
    save_whisper,
    to_openai,
)

TINY = dict(n_mels=80, n_audio_ctx=40, n_audio_state=64, n_audio_head=4, n_audio_layer=2, n_vocab=51865,
            n_text_ctx=48, n_text_state=64, n_text_head=4, n_text_layer=2)


def random_model(seed=0, **over) -> Whisper:
    torch.manual_seed(seed)
    m = Whisper(WhisperConfig(**{**TINY, **over}))
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)
    return m.eval()


def weights_of(m: Whisper) -> WhisperWeights:
    return WhisperWeights(m.config, {k: v.clone() for k, v in m.state_dict().items()}, source="test")


def test_kv_cache_matches_full_forward_and_training_is_differentiable():
    m = random_model()
    mel, tok = torch.randn(2, 80, 80), torch.randint(0, 51865, (2, 9))
    full = m(mel, tok)
    assert full.shape == (2, 9, 51865)
    with torch.no_grad():
        f = m.embed_audio(mel)
        cache = m.new_cache(2)
        steps = [m.logits(tok[:, :3], f, cache), m.logits(tok[:, 3:4], f, cache), m.logits(tok[:, 4:], f, cache)]
    torch.testing.assert_close(torch.cat(steps, 1), full.detach(), atol=1e-5, rtol=0)
    loss = torch.nn.functional.cross_entropy(full.flatten(0, 1), tok.flatten())
    loss.backward()
    assert m.encoder.conv1.weight.grad is not None and m.decoder.token_embedding.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("windows,group", [(1, 1), (2, 1), (1, 5), (2, 5)])
def test_one_token_steps_equal_the_module_forward(windows, group):
    """The fast path's steps run flat over products bound once per window (genlab.asr.fast.StepCache.plan); they
    must give the plain model's logits, for one or two rows (contiguous copies), beams sharing audio rows
    (oneDNN), and int8 layers (their own kernels, against the quantized copy's module forward)."""
    for fast in (FastWhisper(random_model()), FastWhisper(random_model(), int8=True)):
        plain = fast.model  # the int8 wrapper's quantized copy: the same kernels through the modules
        with torch.no_grad():
            f = fast.embed_audio(torch.randn(windows, 80, 80))
            kv = fast.audio_kv(f)
            start = torch.randint(0, 51865, (windows * group, 3))
            flat, modules = fast.new_cache(windows * group, audio_kv=kv), plain.new_cache(windows * group)
            assert flat.plan is not None
            fast.logits(start, f, flat, audio_kv=kv), plain.logits(start, f, modules, audio_kv=kv)
            for _ in range(3):
                tok = torch.randint(0, 51865, (windows * group, 1))
                a = fast.logits(tok, f, flat, positions=[-1], audio_kv=kv)
                b = fast._output(plain.decoder.hidden(tok, f, modules, kv, positions=[-1]))
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
            assert flat.length == modules.length == 6


def _openai(m: Whisper):
    whisper_model = pytest.importorskip("whisper.model")
    ck = to_openai(weights_of(m))
    ref = whisper_model.Whisper(whisper_model.ModelDimensions(**ck["dims"]))
    ref.load_state_dict(ck["model_state_dict"])
    return ref.eval()


def test_logits_match_openai_whisper():
    m = random_model()
    ref = _openai(m)
    mel, tok = torch.randn(2, 80, 80), torch.randint(0, 51865, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(m(mel, tok), ref(mel, tok), atol=1e-5, rtol=0)


def test_greedy_tokens_match_openai_whisper():
    whisper = pytest.importorskip("whisper")
    from whisper.tokenizer import get_tokenizer as ref_tokenizer

    from genlab.asr.api import package_dir

    tok_dir = package_dir("base", required=False)
    if tok_dir is None:
        pytest.skip("needs a Whisper tokenizer.json (genlab[whisper])")
    from genlab.asr.tokenizer import get_tokenizer

    m = random_model(seed=1, n_audio_ctx=1500, n_text_ctx=64)
    ref = _openai(m)
    mel = torch.randn(1, 80, 3000) * 0.5
    tok = get_tokenizer(tok_dir / "tokenizer.json", True)
    for opts in (dict(without_timestamps=True), dict(without_timestamps=False)):
        ours = decode(m, mel, tok, DecodingOptions(language="en", sample_len=20, **opts))[0]
        theirs = whisper.decode(ref, mel, whisper.DecodingOptions(language="en", sample_len=20, fp16=False, **opts))[0]
        assert ref_tokenizer(True, num_languages=99).sot == tok.sot
        assert ours.tokens == theirs.tokens, opts
        assert abs(ours.avg_logprob - theirs.avg_logprob) < 1e-4
        assert abs(ours.no_speech_prob - theirs.no_speech_prob) < 1e-5


def test_beam_search_matches_openai_whisper():
    """Beam 5 on a tiny random model, with openai-whisper's rule for when a hypothesis ends
    (``end_within_beam=False``): the same tokens and log-probability as its BeamSearchDecoder, with and without
    timestamps; two windows decoded together give what each gives alone (openai-whisper's beam
    search fails on more than one window, so that is checked against genlab itself)."""
    whisper = pytest.importorskip("whisper")
    from genlab.asr.api import package_dir
    from genlab.asr.tokenizer import get_tokenizer

    tok_dir = package_dir("base", required=False)
    if tok_dir is None:
        pytest.skip("needs a Whisper tokenizer.json (genlab[whisper])")
    tok = get_tokenizer(tok_dir / "tokenizer.json", True)
    m = random_model(seed=2, n_audio_ctx=1500, n_text_ctx=64)
    ref = _openai(m)
    torch.manual_seed(4)
    mel = torch.randn(2, 80, 3000) * 0.5
    for opts in (dict(without_timestamps=True), dict(without_timestamps=False)):
        options = DecodingOptions(language="en", sample_len=24, beam_size=5, end_within_beam=False, **opts)
        alone = [decode(m, mel[i : i + 1], tok, options)[0] for i in range(2)]
        for i, ours in enumerate(alone):
            reference = whisper.DecodingOptions(language="en", sample_len=24, beam_size=5, fp16=False, **opts)
            theirs = whisper.decode(ref, mel[i : i + 1], reference)[0]
            assert ours.tokens == theirs.tokens, opts
            assert abs(ours.avg_logprob - theirs.avg_logprob) < 1e-4
        together = decode(m, mel, tok, options)
        assert [r.tokens for r in together] == [r.tokens for r in alone]


def test_timestamp_rules_equal_openai_whispers_per_row_filter():
    """The timestamp grammar, written over all rows at once, masks exactly what openai-whisper's per-row
    ApplyTimestampRules masks: random logits, rows at every state of the grammar (no text yet, text, an opening
    timestamp, a closed pair, timestamps only), with and without a prompt before the sampled tokens."""
    decoding = pytest.importorskip("whisper.decoding")
    from types import SimpleNamespace

    from genlab.asr.decoding import apply_timestamp_rules

    tok = SimpleNamespace(eot=50, no_timestamps=52, timestamp_begin=60)
    V, g = 120, torch.Generator().manual_seed(0)
    rows = [[], [61], [61, 7], [61, 7, 64], [61, 7, 64, 64], [61, 7, 64, 66], [62, 62], [63, 9, 9, 70, 70, 3]]
    for prompt in ([], [1, 2, 3]):
        for max_initial in (None, 5):
            for length in sorted({len(r) for r in rows}):
                same = [r for r in rows if len(r) == length]
                tokens = torch.tensor([prompt + r for r in same], dtype=torch.long).view(len(same), -1)
                for scale in (1.0, 8.0):  # large logits make the timestamp-mass rule fire in some rows
                    logits = torch.randn(len(same), V, generator=g) * scale
                    expected = logits.clone()
                    decoding.ApplyTimestampRules(tok, len(prompt), max_initial).apply(expected, tokens)
                    apply_timestamp_rules(logits, tokens, len(prompt), tok, max_initial)
                    assert torch.equal(logits, expected), (prompt, same, max_initial, scale)


def _hf_from(m: Whisper, tmp_path):
    transformers = pytest.importorskip("transformers")
    c = m.config
    cfg = transformers.WhisperConfig(
        vocab_size=c.n_vocab, num_mel_bins=c.n_mels, encoder_layers=c.n_audio_layer, decoder_layers=c.n_text_layer,
        encoder_attention_heads=c.n_audio_head, decoder_attention_heads=c.n_text_head, d_model=c.n_audio_state,
        encoder_ffn_dim=4 * c.n_audio_state, decoder_ffn_dim=4 * c.n_text_state, max_source_positions=c.n_audio_ctx,
        max_target_positions=c.n_text_ctx,
    )
    torch.manual_seed(3)
    hf = transformers.WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "embed_positions" not in name or "decoder" in name:
                p.normal_(0, 0.2)
    hf.save_pretrained(tmp_path / "hf")
    return hf


def test_hf_directory_loads_with_identical_logits_and_greedy_tokens(tmp_path):
    hf = _hf_from(random_model(), tmp_path)
    m = build_model(from_hf(tmp_path / "hf"))
    mel, tok = torch.randn(2, 80, 80), torch.randint(0, 51865, (2, 7))
    with torch.no_grad():
        ref = hf(input_features=mel, decoder_input_ids=tok).logits
        torch.testing.assert_close(m(mel, tok), ref, atol=1e-5, rtol=0)
        # Plain greedy continuation (no filters) token by token against HF's own forward.
        f = m.embed_audio(mel[:1])
        cache = m.new_cache(1)
        seq = tok[:1, :3]
        nxt = m.logits(seq, f, cache, positions=[-1])[:, -1].argmax(-1, keepdim=True)
        ours, theirs, hseq = [], [], seq
        for _ in range(10):
            ours.append(int(nxt))
            nxt = m.logits(nxt, f, cache, positions=[-1])[:, -1].argmax(-1, keepdim=True)
        for _ in range(10):
            t = hf(input_features=mel[:1], decoder_input_ids=hseq).logits[:, -1].argmax(-1, keepdim=True)
            theirs.append(int(t))
            hseq = torch.cat([hseq, t], 1)
    assert ours == theirs


def test_openai_checkpoint_round_trip(tmp_path):
    m = random_model()
    torch.save(to_openai(weights_of(m)), tmp_path / "tiny.pt")
    back = build_model(from_openai(tmp_path / "tiny.pt"))
    for k, v in m.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


# -- CTranslate2: a writer in the test (the format as documented in interop/ct2.py) and the real converter ------


def _write_ct2(path, variables: dict, aliases: dict, version=6):
    ids = {torch.float32: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.float16: 4}

    def s(x):
        b = x.encode()
        return struct.pack("<H", len(b) + 1) + b + b"\0"

    out = struct.pack("<I", version) + s("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, t in variables.items():
        out += s(name) + struct.pack("<B", t.ndim) + b"".join(struct.pack("<I", d) for d in t.shape)
        raw = t.contiguous().numpy().tobytes()
        out += struct.pack("<BI", ids[t.dtype], len(raw)) + raw
    out += struct.pack("<I", len(aliases)) + b"".join(s(a) + s(b) for a, b in aliases.items())
    path.write_bytes(out)


def _ct2_vars(m: Whisper) -> dict:
    from genlab.asr.model import sinusoids

    sd, c = m.state_dict(), m.config
    v = {"encoder/num_heads": torch.tensor(c.n_audio_head, dtype=torch.int16),
         "decoder/num_heads": torch.tensor(c.n_text_head, dtype=torch.int16),
         "encoder/position_encodings/encodings": sinusoids(c.n_audio_ctx, c.n_audio_state),
         "decoder/position_encodings/encodings": sd["decoder.positional_embedding"],
         "decoder/embeddings/weight": sd["decoder.token_embedding.weight"]}
    for p in ("weight", "bias"):
        v[f"encoder/conv1/{p}"], v[f"encoder/conv2/{p}"] = sd[f"encoder.conv1.{p}"], sd[f"encoder.conv2.{p}"]

    def ln(dst, src):
        v[dst + "/gamma"], v[dst + "/beta"] = sd[src + ".weight"], sd[src + ".bias"]

    def lin(dst, src):
        v[dst + "/weight"], v[dst + "/bias"] = sd[src + ".weight"], sd[src + ".bias"]

    def fused(dst, srcs):
        v[dst + "/weight"] = torch.cat([sd[s + ".weight"] for s in srcs])
        v[dst + "/bias"] = torch.cat([sd.get(s + ".bias", torch.zeros(sd[s + ".weight"].shape[0])) for s in srcs])

    for side, n in (("encoder", c.n_audio_layer), ("decoder", c.n_text_layer)):
        for i in range(n):
            p, q = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            ln(f"{q}/self_attention/layer_norm", f"{p}.attn_ln")
            fused(f"{q}/self_attention/linear_0", [f"{p}.attn.query", f"{p}.attn.key", f"{p}.attn.value"])
            lin(f"{q}/self_attention/linear_1", f"{p}.attn.out")
            ln(f"{q}/ffn/layer_norm", f"{p}.mlp_ln")
            lin(f"{q}/ffn/linear_0", f"{p}.mlp.0")
            lin(f"{q}/ffn/linear_1", f"{p}.mlp.2")
            if side == "decoder":
                ln(f"{q}/attention/layer_norm", f"{p}.cross_attn_ln")
                lin(f"{q}/attention/linear_0", f"{p}.cross_attn.query")
                fused(f"{q}/attention/linear_1", [f"{p}.cross_attn.key", f"{p}.cross_attn.value"])
                lin(f"{q}/attention/linear_2", f"{p}.cross_attn.out")
    ln("encoder/layer_norm", "encoder.ln_post")
    ln("decoder/layer_norm", "decoder.ln")
    return v


def test_ct2_round_trip_and_errors(tmp_path):
    m = random_model()
    d = tmp_path / "ct2"
    d.mkdir()
    _write_ct2(d / "model.bin", _ct2_vars(m), {"decoder/projection/weight": "decoder/embeddings/weight"})
    (d / "config.json").write_text(json.dumps({"alignment_heads": [[1, 0], [1, 3]]}))
    w = from_ct2(d)
    assert w.config == m.config and w.alignment_heads == [(1, 0), (1, 3)]
    back = build_model(w)
    for k, v in m.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # Split into parts, as the pip packages ship it.
    raw = (d / "model.bin").read_bytes()
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "model.bin.part1").write_bytes(raw[:1000])
    (parts / "model.bin.part2").write_bytes(raw[1000:])
    assert torch.equal(build_model(from_ct2(parts)).decoder.ln.weight, m.decoder.ln.weight)
    # Truncated and foreign files are refused in one line.
    (parts / "model.bin.part2").write_bytes(raw[1000:-50])
    with pytest.raises(GenlabError, match="truncated"):
        from_ct2(parts)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.bin").write_bytes(b"\x09\x00\x00\x00garbage")
    with pytest.raises(GenlabError, match="not a CTranslate2"):
        from_ct2(bad)


def test_ct2_reader_on_ctranslate2s_own_converter(tmp_path):
    """The real thing: ctranslate2 converts a tiny HF Whisper; genlab reads the model.bin it wrote."""
    converters = pytest.importorskip("ctranslate2.converters")
    from genlab.asr.api import package_dir

    # The converter reads the tokenizer too; a real Whisper tokenizer.json is the only one we have offline.
    tokenizer = package_dir("base", required=False)
    if tokenizer is None:
        pytest.skip("the converter needs a Whisper tokenizer.json: install genlab[whisper]")
    hf = _hf_from(random_model(), tmp_path)
    shutil.copy(tokenizer / "tokenizer.json", tmp_path / "hf" / "tokenizer.json")
    converters.TransformersConverter(str(tmp_path / "hf"), load_as_float16=False).convert(
        str(tmp_path / "ct2"), quantization="float32"
    )
    m = build_model(from_ct2(tmp_path / "ct2"))
    mel, tok = torch.randn(1, 80, 80), torch.randint(0, 51865, (1, 5))
    with torch.no_grad():
        torch.testing.assert_close(m(mel, tok), hf(input_features=mel, decoder_input_ids=tok).logits,
                                   atol=1e-4, rtol=0)


def test_genlab_checkpoint_round_trip_and_strict_shapes(tmp_path):
    from genlab.asr.api import package_dir

    m = random_model()
    w = weights_of(m)
    tok = package_dir("base", required=False)
    if tok is None:
        w.tokenizer_path = str(tmp_path / "tokenizer.json")
        (tmp_path / "tokenizer.json").write_text("{}")
    else:
        w.tokenizer_path = str(tok / "tokenizer.json")
    w.alignment_heads = [(1, 2)]
    path = save_whisper(tmp_path / "ck", w)
    assert (path / "tokenizer.json").exists()
    back = load_whisper(path)
    assert back.config == m.config and back.alignment_heads == [(1, 2)]
    assert json.loads((path / "config.json").read_text())["config"]["n_text_layer"] == 2
    bm = build_model(back)
    for k, v in m.state_dict().items():
        assert torch.equal(bm.state_dict()[k], v)
    # Weights that do not fit the config: one line.
    cfg = json.loads((path / "config.json").read_text())
    cfg["config"]["n_text_state"] = 32
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(GenlabError, match="do not match the config") as e:
        build_model(load_whisper(path))
    assert "\n" not in str(e.value)


def test_presets_have_published_shapes():
    from genlab.asr.model import PRESETS

    assert asdict(PRESETS["base"])["n_text_state"] == 512 and PRESETS["tiny"].n_audio_layer == 4
    assert PRESETS["small"].n_text_head == 12
    # openai-whisper's tiny has 37,760,640 parameters including its 1500 x 384 sinusoid buffer, a buffer here.
    n = sum(p.numel() for p in Whisper(PRESETS["tiny"]).parameters())
    assert n + PRESETS["tiny"].n_audio_ctx * PRESETS["tiny"].n_audio_state == 37_760_640


def test_cached_output_projection_follows_the_embedding():
    m = random_model()
    mel, tok = torch.randn(1, 80, 80), torch.randint(0, 51865, (1, 4))
    with torch.no_grad():
        before = m(mel, tok)
        m.decoder.token_embedding.weight.mul_(0.5)  # an in-place change (optimizer step, load_state_dict)
        after = m(mel, tok)
    with torch.enable_grad():
        reference = m(mel, tok)  # training path: the transposed view of the live embedding, no cache
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference.detach(), atol=1e-5, rtol=0)
    m.load_state_dict(random_model(seed=1).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(m(mel, tok), random_model(seed=1)(mel, tok), atol=1e-5, rtol=0)


def test_int8_stacked_query_key_value_equals_the_three_layers():
    fast = FastWhisper(random_model(), int8=True)
    with torch.no_grad():
        x = torch.randn(1, 64)
        a = fast.decoder.blocks[0].attn
        one = fast._qkv[0](x)
        three = torch.cat([a.query(x), a.key(x), a.value(x)], dim=-1)
    assert torch.equal(one, three)  # per-row weight scales and one input scale per product: the same integers
