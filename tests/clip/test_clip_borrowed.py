"""A CLIP with a borrowed, frozen text tower (``CLIPConfig.minilm``) on a tiny random BERT written as HF would
publish it (``model.safetensors`` of ``BertModel`` names, a WordPiece ``tokenizer.json`` beside): parity with HF
``BertModel``; training updates only the image tower, the projection and the temperature; the encoder is a
checkpoint component (referenced by path and hash, not copied); resume; loading for classify / embed; a changed
encoder file is refused."""

import json

import pytest
import torch
import torch.nn.functional as F
from clip_images import write_images
from ddp_clip_worker import digits_pairs
from safetensors.torch import load_file, save_file

from genlab.cli import main
from genlab.clip.minilm import MiniLM, MiniLMConfig
from genlab.clip.model import PRESETS, CLIPConfig
from genlab.clip.pipeline import embed_texts, load, load_text_encoder
from genlab.clip.task import ClipTask
from genlab.clip.text import WordPieceTokenizer
from genlab.errors import GenlabError
from genlab.train import TrainConfig, Trainer, seed_everything

WORDS = ["the", "digit", "a", "red", "apple", "dog", "emoji", "of", "picture", "face", "##s", "##ing", "grin"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_tiny_bert(directory):
    """A random 2-layer, 32-wide HF BertModel and its WordPiece tokenizer, as a published model's files."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    vocab = SPECIAL + WORDS + list(chars + ".,!?") + [f"##{c}" for c in chars]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                                 ("[SEP]", 3)])
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64, pad_token_id=0,
                                     attn_implementation="eager")
    torch.manual_seed(1)
    hf = transformers.BertModel(config).eval()
    save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(directory / "model.safetensors"))
    cfg = MiniLMConfig(vocab_size=len(vocab), max_positions=64, width=32, layers=2, heads=2, mlp_hidden=64,
                       max_length=32, weights=str(directory / "model.safetensors"))
    return hf, cfg


@pytest.fixture
def tiny_bert(tmp_path):
    return write_tiny_bert(tmp_path / "encoder")


def clip_config(minilm: MiniLMConfig) -> CLIPConfig:
    tiny = PRESETS["tiny"]
    return CLIPConfig(embed_dim=tiny.embed_dim, vision=tiny.vision, minilm=minilm)


def one_step_run(minilm: MiniLMConfig, run) -> None:
    seed_everything(0)
    task = ClipTask(clip_config(minilm), digits_pairs(16), None, shift=0)
    train = TrainConfig(steps=1, batch_size=16, warmup_steps=0, ema_decay=0.0, ckpt_every=0, progress=False,
                        threads=1)
    Trainer(task, train, run).fit()


def test_tiny_random_bert_matches_hf(tiny_bert):
    hf, cfg = tiny_bert
    encoder = load_text_encoder(cfg.weights)
    model = MiniLM(cfg).eval()
    model.load_state_dict(encoder.weights)
    tok = WordPieceTokenizer.from_json(encoder.tokenizer, cfg)
    tokens = tok.encode(["the digit 7", "A grinning dog emoji, a red apple!", "zebra"])  # (3, T), padded
    mask = tokens != 0
    with torch.no_grad():
        theirs = hf(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
        ours, pooled = model(tokens), model.embed(tokens)
    assert (ours - theirs)[mask].abs().max().item() < 1e-5
    w = mask[:, :, None].float()
    assert (pooled - F.normalize((theirs * w).sum(1) / w.sum(1), dim=-1)).abs().max().item() < 1e-6


def test_borrowed_tower_trains_only_its_projection_resumes_and_loads(tiny_bert, tmp_path):
    _, minilm = tiny_bert
    cfg, data = clip_config(minilm), digits_pairs(64)
    seed_everything(0)
    task = ClipTask(cfg, data, None, shift=0)
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    train = TrainConfig(steps=3, batch_size=16, lr=1e-2, warmup_steps=0, ema_decay=0.9, ckpt_every=0, progress=False,
                        threads=1)
    Trainer(task, train, tmp_path / "run").fit()
    after = task.model.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("text.encoder.") for k in changed)
    assert {"text.proj.weight", "logit_scale", "visual.proj.weight"} <= changed
    # the cached sentence embeddings are what the frozen encoder gives
    ids = torch.arange(len(data))
    with torch.no_grad():
        cached = task.encode_text({"captions": ids})
        direct = task.model.encode_text(task.tokenizer.encode(data.captions))
    assert torch.allclose(cached, direct, atol=1e-6)

    ckpt = tmp_path / "run" / "checkpoints" / "step_0000003"
    config = json.loads((ckpt / "config.json").read_text())
    encoder = load_text_encoder(minilm.weights)
    assert config["components"] == {"text_encoder": {"ref": minilm.weights, "hash": encoder.hash}}
    assert config["config"]["tokenizer"] is None
    for name in ("model.safetensors", "ema.safetensors"):
        keys = load_file(str(ckpt / name))
        assert keys and not any(k.startswith("text.encoder.") for k in keys)

    seed_everything(0)  # resume: two more steps on a freshly built task
    Trainer(ClipTask(cfg, data, None, shift=0), TrainConfig(**{**train.__dict__, "steps": 5}), tmp_path / "run").fit()
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step_0000005"

    loaded = load(str(tmp_path / "run"), use_ema=False)
    assert isinstance(loaded.tokenizer, WordPieceTokenizer)
    emb = embed_texts(loaded.model, loaded.tokenizer, ["the digit 7", "a red apple"])
    assert emb.shape == (2, cfg.embed_dim) and torch.allclose(emb.norm(dim=-1), torch.ones(2))


def test_cli_classify_and_embed_with_a_borrowed_tower(tiny_bert, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    _, minilm = tiny_bert
    one_step_run(minilm, tmp_path / "run")
    run = str(tmp_path / "run")
    paths = write_images(tmp_path / "pics", n=3)
    assert main(["classify", *map(str, paths), "--labels", "red apple,dog", "--model", run, "--no-progress"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    out = tmp_path / "emb.npy"
    assert main(["embed", "--texts", "the digit 7", "a dog", "--out", str(out), "--model", run]) == 0
    provenance = json.loads(out.with_suffix(".json").read_text())
    assert out.exists() and provenance["shape"] == [2, 16]
    assert provenance["components"]["text_encoder"]["ref"] == minilm.weights


def test_a_changed_encoder_file_is_refused(tiny_bert, tmp_path):
    _, minilm = tiny_bert
    one_step_run(minilm, tmp_path / "run")
    weights = load_file(minilm.weights)
    weights["embeddings.LayerNorm.bias"] = weights["embeddings.LayerNorm.bias"] + 1
    save_file(weights, minilm.weights)
    with pytest.raises(GenlabError, match="weights hash"):
        load(str(tmp_path / "run"))


def test_latent_diffusion_refuses_a_borrowed_tower_clip(tiny_bert, tmp_path):
    """A latent diffusion model conditions on a CLIP text tower's per-token states; the borrowed one is not that."""
    from genlab.latent.task import load_clip_component

    _, minilm = tiny_bert
    one_step_run(minilm, tmp_path / "run")
    with pytest.raises(GenlabError):
        load_clip_component(str(tmp_path / "run"))
