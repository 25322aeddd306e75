"""genlab's CLIP against HF CLIPModel (the oracle) on tiny random models: HF directories, open_clip state dicts
(built here from the HF weights by open_clip's key names, since open_clip needs torchvision), and the CLI."""

import copy
import json
import math

import pytest
import torch
from safetensors.torch import save_file

from genlab.checkpoint import load_checkpoint
from genlab.cli import main
from genlab.clip.convert import build, load_hf, load_open_clip
from genlab.clip.model import CLIPConfig
from genlab.config import from_dict

transformers = pytest.importorskip("transformers")

TOL = 1e-5


def hf_model(eos_token_id=98, act="quick_gelu", width=32, heads=4, mlp=37, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=width, intermediate_size=mlp, num_hidden_layers=2,
                         num_attention_heads=heads, max_position_embeddings=20, hidden_act=act,
                         eos_token_id=eos_token_id, bos_token_id=97),
        vision_config=dict(image_size=16, patch_size=4, hidden_size=width, intermediate_size=mlp, num_hidden_layers=2,
                           num_attention_heads=heads, hidden_act=act),
        projection_dim=24, logit_scale_init_value=math.log(20.0),
    )
    model = transformers.CLIPModel(cfg).eval()
    with torch.no_grad():  # random, not HF's init: LayerNorms and biases that are not 1 and 0 catch a swapped name
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def inputs(seed=1, eos=98, rule="argmax"):
    """Pixels and token ids; under "argmax" the end-of-text (98) is the largest id, under "eos" larger ids follow."""
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(3, 3, 16, 16, generator=g)
    ids = torch.randint(2, 97 if rule == "argmax" else 99, (4, 12), generator=g)
    ids[:, 0] = 97
    for row, end in enumerate((11, 5, 8, 2)):  # end-of-text at different places, then padding
        ids[row, end] = eos
        ids[row, end + 1 :] = eos if rule == "argmax" else 0
    return pixels, ids


def compare(ours, ref, pixels, ids):
    with torch.no_grad():
        out = ref(input_ids=ids, pixel_values=pixels)
        img_raw = ref.get_image_features(pixel_values=pixels)
        txt_raw = ref.get_text_features(input_ids=ids)
        img_raw = getattr(img_raw, "pooler_output", img_raw)
        txt_raw = getattr(txt_raw, "pooler_output", txt_raw)
        errors = {
            "image_raw": (ours.encode_image(pixels, normalize=False) - img_raw).abs().max().item(),
            "text_raw": (ours.encode_text(ids, normalize=False) - txt_raw).abs().max().item(),
            "image_embeds": (ours.encode_image(pixels) - out.image_embeds).abs().max().item(),
            "text_embeds": (ours.encode_text(ids) - out.text_embeds).abs().max().item(),
            "logits": (ours(pixels, ids) - out.logits_per_image).abs().max().item(),
        }
    assert max(errors.values()) < TOL, errors
    return errors


@pytest.mark.parametrize("eos,act", [(50, "quick_gelu"), (2, "gelu")])
def test_hf_directory_matches_hf_clipmodel(tmp_path, eos, act):
    ref = hf_model(eos_token_id=eos, act=act)
    ref.save_pretrained(tmp_path / "hf")
    cfg, state, tokenizer = load_hf(tmp_path / "hf")
    assert cfg.text.pool == ("argmax" if eos == 2 else "eos") and cfg.vision.activation == act
    ours = build(cfg, state, "test")
    # With eos 50, larger ids follow in the rows: argmax and first-eos pooling disagree there.
    pixels, ids = inputs(eos=98 if eos == 2 else 50, rule="argmax" if eos == 2 else "eos")
    compare(ours, ref, pixels, ids)


def test_eos_rule_differs_from_argmax_rule():
    """The two pooling rules give different embeddings on ids where the end-of-text is not the largest id: the
    parity above would catch a model that ignored the config."""
    ref = hf_model(eos_token_id=50)
    cfg, state, _ = load_hf_from_model(ref)
    pixels, ids = inputs(eos=50, rule="eos")
    ours = build(cfg, state, "test")
    wrong_cfg = copy.deepcopy(cfg)
    wrong_cfg.text.pool = "argmax"
    wrong = build(wrong_cfg, state, "test")
    with torch.no_grad():
        assert (ours.encode_text(ids) - wrong.encode_text(ids)).abs().max() > 1e-2


def load_hf_from_model(ref, tmp=None):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        ref.save_pretrained(d)
        return load_hf(d)


# ---------------------------------------------------------------------------------------------------------------
# open_clip: its key names (open_clip/model.py CLIP, transformer.py VisionTransformer / ResidualAttentionBlock),
# written out here from the HF names without genlab's mapping.


def hf_to_open_clip(hf: dict) -> dict:
    oc = {
        "visual.conv1.weight": hf["vision_model.embeddings.patch_embedding.weight"],
        "visual.class_embedding": hf["vision_model.embeddings.class_embedding"],
        "visual.positional_embedding": hf["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf["vision_model.pre_layrnorm.bias"],
        "visual.ln_post.weight": hf["vision_model.post_layernorm.weight"],
        "visual.ln_post.bias": hf["vision_model.post_layernorm.bias"],
        "visual.proj": hf["visual_projection.weight"].t(),  # open_clip: x @ proj, (width, embed_dim)
        "token_embedding.weight": hf["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": hf["text_model.embeddings.position_embedding.weight"],
        "ln_final.weight": hf["text_model.final_layer_norm.weight"],
        "ln_final.bias": hf["text_model.final_layer_norm.bias"],
        "text_projection": hf["text_projection.weight"].t(),
        "logit_scale": hf["logit_scale"],
    }
    for src, dst in (("vision_model.encoder.layers", "visual.transformer.resblocks"),
                     ("text_model.encoder.layers", "transformer.resblocks")):
        n = len({k.split(".")[3] for k in hf if k.startswith(src + ".")})
        for i in range(n):
            s, d = f"{src}.{i}.", f"{dst}.{i}."
            for kind in ("weight", "bias"):  # nn.MultiheadAttention's packed projection: rows q, k, v
                oc[d + f"attn.in_proj_{kind}"] = torch.cat([hf[s + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
                oc[d + f"attn.out_proj.{kind}"] = hf[s + f"self_attn.out_proj.{kind}"]
                oc[d + f"ln_1.{kind}"] = hf[s + f"layer_norm1.{kind}"]
                oc[d + f"ln_2.{kind}"] = hf[s + f"layer_norm2.{kind}"]
                oc[d + f"mlp.c_fc.{kind}"] = hf[s + f"mlp.fc1.{kind}"]
                oc[d + f"mlp.c_proj.{kind}"] = hf[s + f"mlp.fc2.{kind}"]
    return {k: v.contiguous() for k, v in oc.items()}


def test_open_clip_dir_with_config_matches_hf(tmp_path):
    ref = hf_model(eos_token_id=2, act="gelu", mlp=128)
    d = tmp_path / "oc"
    d.mkdir()
    save_file(hf_to_open_clip(ref.state_dict()), str(d / "open_clip_model.safetensors"))
    model_cfg = {"embed_dim": 24, "vision_cfg": {"image_size": 16, "layers": 2, "width": 32, "patch_size": 4,
                                                 "head_width": 8},
                 "text_cfg": {"context_length": 20, "vocab_size": 99, "width": 32, "heads": 4, "layers": 2}}
    (d / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    cfg, state, _ = load_open_clip(d)
    assert (cfg.vision.heads, cfg.text.heads, cfg.text.activation, cfg.text.pool) == (4, 4, "gelu", "argmax")
    compare(build(cfg, state, d), ref, *inputs(eos=98))


def test_openai_state_dict_without_config_uses_openai_rules(tmp_path):
    """A bare OpenAI-layout .pt (fp16 weights, OpenAI's extra keys): 64-wide heads, QuickGELU, argmax pooling."""
    ref = hf_model(eos_token_id=2, act="quick_gelu", width=128, heads=2, mlp=512)
    oc = hf_to_open_clip(ref.state_dict())
    oc.update(input_resolution=torch.tensor(16), context_length=torch.tensor(20), vocab_size=torch.tensor(99))
    torch.save(oc, tmp_path / "ViT-tiny.pt")
    cfg, state, _ = load_open_clip(tmp_path / "ViT-tiny.pt")
    assert (cfg.vision.heads, cfg.text.heads, cfg.vision.activation) == (2, 2, "quick_gelu")
    compare(build(cfg, state, "pt"), ref, *inputs(eos=98))


def test_cli_convert_both_formats_and_reload(tmp_path, capsys):
    ref = hf_model(eos_token_id=50)
    ref.save_pretrained(tmp_path / "hf")
    assert main(["convert", "--from", "hf-clip", str(tmp_path / "hf"), "--out", str(tmp_path / "g1")]) == 0
    ckpt = load_checkpoint(tmp_path / "g1", kind="clip")
    cfg = from_dict(CLIPConfig, ckpt.config["model"])
    compare(build(cfg, ckpt.model, "g1"), ref, *inputs(eos=50, rule="eos"))
    assert ckpt.meta["format"] == "hf-clip" and ckpt.meta["weights_hash"]

    save_file(hf_to_open_clip(ref.state_dict()), str(tmp_path / "oc.safetensors"))
    # Without a config, OpenAI's rules apply: 32 wide / 64 = 0 heads cannot work, and it says so in one line.
    argv = ["convert", "--from", "open_clip", str(tmp_path / "oc.safetensors"), "--out", str(tmp_path / "g2")]
    assert main(argv) == 2
    assert "heads" in capsys.readouterr().err


@pytest.mark.parametrize("content,expected", [(b"", "not a readable"), (b"not weights", "not a readable")])
def test_convert_refuses_bad_files_in_one_line(tmp_path, capsys, content, expected):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "hf" / "model.safetensors").write_bytes(content)
    assert main(["convert", "--from", "hf-clip", str(tmp_path / "hf"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


def test_convert_refuses_unsupported_activation(tmp_path, capsys):
    ref = hf_model(act="relu")
    ref.save_pretrained(tmp_path / "hf")
    assert main(["convert", "--from", "hf-clip", str(tmp_path / "hf"), "--out", str(tmp_path / "o")]) == 2
    assert "activation 'relu'" in capsys.readouterr().err
