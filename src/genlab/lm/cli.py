"""``genlab generate text``, ``genlab chat``, ``genlab train lm``, ``genlab eval lm``,
``genlab convert --from hf-gpt2|hf-llama|gguf`` and the LM section of ``genlab tour``. Heavy imports live inside
the handlers.

Every option is checked before a model is loaded (SmolLM2 takes seconds to dequantise): an empty prompt, a
sampling setting out of range or an unwritable output fails at once, in one line, exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import GenlabError


def register(commands) -> None:
    p = commands.generate.add_parser("text", help="continue a text prompt, streaming tokens as they come")
    p.add_argument("prompt", help="the text to continue")
    _model_args(p)
    p.add_argument("--max-new-tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus: keep the most likely tokens up to mass p")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the text with its provenance here")
    p.set_defaults(handler=_generate)

    p = commands.top.add_parser("chat", help="talk to a language model with its chat template (a plain REPL)")
    _model_args(p, default="smollm2")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_chat)

    from ..cli import add_train_command

    add_train_command(commands, "lm", help="train a language model on the KJV (next-token cross-entropy)",
                      presets=("text-lm", "smoke"), default="text-lm", handler=_train)

    p = commands.eval.add_parser("lm", help="perplexity and bits per character on the held-out KJV chapters")
    _model_args(p)
    p.add_argument("--max-chars", type=int, default=0, help="score only the first chapters up to this many "
                   "characters (0: all 59 held-out chapters, ~200k characters)")
    p.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the unigram / bigram baselines")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report here")
    p.set_defaults(handler=_eval)

    for name in ("hf-gpt2", "hf-llama", "gguf"):
        commands.converters[name] = _converter(name)
    commands.tour_sections.append(tour_section)


def tour_section(out_dir: Path, quick: bool) -> str:
    from .tour import tour_section as section

    return section(out_dir, quick)


def _model_args(p, default: str = "text-lm") -> None:
    p.add_argument("--model", default=default, help=f"text-lm | smollm2 | a .gguf file | an lm checkpoint "
                   f"directory (default {default})")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                   help="weights and cache precision (bfloat16 halves what each step reads; default float32, "
                   "bfloat16 with --weights int4)")
    p.add_argument("--weights", default="float", choices=["float", "int4"],
                   help="GGUF models: float = every weight dequantised (the published numbers exactly, default); "
                   "int4 = the Q4_1 matrices multiplied as stored, 4 bits a weight (faster decoding, scales rounded "
                   "to bfloat16)")


def check_writable(path: str | None) -> None:
    if path is None:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a"):
            pass
    except OSError as e:
        raise GenlabError(f"cannot write {path}: {e.strerror}") from None


def _check_sampling(args) -> None:
    from .pipeline import processors

    processors(args.temperature, getattr(args, "top_k", None), args.top_p)  # one line if out of range
    if args.max_new_tokens < 1:
        raise GenlabError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")


def _generate(args) -> None:
    from .pipeline import chat_prompt, encode_prompt, generate_text, load

    if not args.prompt:
        raise GenlabError("the prompt is empty")
    _check_sampling(args)
    check_writable(args.json)
    lm = load(args.model, dtype=args.dtype, weights=args.weights)
    prompt = chat_prompt(lm, args.prompt) if args.chat else args.prompt
    encode_prompt(lm, prompt, args.max_new_tokens)  # a prompt too long is refused before it is echoed
    if not args.chat:
        print(prompt, end="", flush=True)
    record = generate_text(lm, prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                           on_text=lambda s: print(s, end="", flush=True))
    print()
    if args.json:
        Path(args.json).write_text(json.dumps({**record, "chat": args.chat}, indent=2) + "\n")


def _chat(args) -> None:
    from .pipeline import chat_prompt, generate_text, load

    _check_sampling(args)
    lm = load(args.model, dtype=args.dtype, weights=args.weights)
    if not lm.cfg.chat_template:
        raise GenlabError(f"{args.model} has no chat template (try --model smollm2)")
    print(f"chatting with {args.model} (empty line or Ctrl-D ends)", file=sys.stderr)
    history: list[dict[str, str]] = []
    for turn in range(1_000_000):
        try:
            user = input("> ").strip()
        except EOFError:
            break
        if not user:
            break
        record = generate_text(lm, chat_prompt(lm, user, history), max_new_tokens=args.max_new_tokens,
                               temperature=args.temperature, top_p=args.top_p, seed=args.seed + turn,
                               on_text=lambda s: print(s, end="", flush=True))
        print()
        history += [{"role": "user", "content": user}, {"role": "assistant", "content": record["text"]}]


def _train(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import PRESETS, LMTask

    train_preset(args, "lm", PRESETS, LMTask,
                 lambda task: f"{count_parameters(task.model)} parameters, {len(task.stream):,} training tokens")


def _eval(args) -> None:
    from .evaluate import heldout_report
    from .pipeline import load

    if args.max_chars < 0:
        raise GenlabError(f"--max-chars must be >= 0, got {args.max_chars}")
    check_writable(args.json)
    lm = load(args.model, dtype=args.dtype, weights=args.weights)
    report = heldout_report(lm, max_chars=args.max_chars or None, baselines=args.baselines)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


def _converter(name: str):
    def convert(src: str, out: str, args) -> None:
        from . import pipeline
        from .convert import from_hf

        check_writable(str(Path(out) / ".probe"))
        (Path(out) / ".probe").unlink(missing_ok=True)
        if name == "gguf":
            cfg, state, _, meta = pipeline.from_gguf(Path(src))
        else:
            kind = name.removeprefix("hf-")
            model_cfg, state, tok = from_hf(src, kind)
            if tok is None:
                raise GenlabError(f"{src}: no tokenizer.json beside the weights (genlab checkpoints carry their "
                                  f"alphabet)")
            cfg = pipeline.TextLMConfig(model=model_cfg, tokenizer=pipeline.tokenizer_json(tok),
                                        eos_token=_hf_eos(src, tok), source=f"hf-{kind}:{Path(src).name}")
            meta = {"converted_from": str(src)}
        pipeline.build(cfg.model, state, src)  # refuses, in one line, weights that do not fit the config
        path = pipeline.save(out, cfg, state, {**meta, "converter": name})
        print(f"wrote genlab lm checkpoint {path} ({sum(v.numel() for v in state.values()) / 1e6:.1f}M parameters)")

    return convert


def _hf_eos(src: str, tok) -> str | None:
    """The end-of-text token named in an HF directory's config (as an id), if the tokenizer has it."""
    try:
        eos = json.loads((Path(src) / "config.json").read_text()).get("eos_token_id")
    except (OSError, json.JSONDecodeError):
        return None
    eos = eos[0] if isinstance(eos, list) and eos else eos
    return tok.tokenizer.id_to_token(eos) if isinstance(eos, int) else None
