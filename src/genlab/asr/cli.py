"""``genlab transcribe``, ``genlab detect-language``, ``genlab convert --from ct2|openai-whisper|hf``, and the
ASR section of ``genlab tour``. Everything heavy is imported inside the handlers."""

from __future__ import annotations

import sys
from pathlib import Path

FORMATS = ("txt", "srt", "vtt", "tsv", "json")


def register(commands) -> None:
    p = commands.top.add_parser("transcribe", help="transcribe speech with Whisper (txt/srt/vtt/tsv/json)")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files (wav, flac, ogg, mp3)")
    p.add_argument("--model", default="base", help="base | tiny.en | speech-asr | a checkpoint dir or file")
    p.add_argument("--language", default="auto", help="'auto' to detect it, or a code such as en, de, fr")
    p.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    p.add_argument("--beam-size", type=int, default=5, help="beam width; 1 = greedy (default 5)")
    p.add_argument("--best-of", type=int, default=5, help="samples drawn at temperature > 0 (default 5)")
    p.add_argument(
        "--temperature", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        help="fallback temperatures, tried in order when a window fails the quality checks",
    )
    p.add_argument("--initial-prompt", default=None, help="text that conditions the first window")
    p.add_argument("--no-condition-on-previous-text", dest="condition_on_previous_text", action="store_false")
    p.add_argument("--word-timestamps", action="store_true", help="word times from cross-attention + DTW")
    p.add_argument("--no-vad", dest="vad", action="store_false", help="do not skip non-speech with the VAD")
    p.add_argument("--batch-size", type=int, default=1,
                   help="windows of utterances decoded together (with the VAD; faster on CPU, words may differ)")
    p.add_argument("--format", default="txt", choices=[*FORMATS, "all"], help="output format (default txt)")
    p.add_argument("--output-dir", default=".", help="where to write the output files (default .)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--int8", action="store_true", help="int8 dynamic quantization of the linear layers (CPU)")
    p.add_argument("--quiet", action="store_true", help="do not print segments as they are decoded")
    p.set_defaults(handler=_transcribe)

    p = commands.top.add_parser("detect-language", help="guess the spoken language of audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", default="base")
    p.add_argument("--device", default="cpu")
    p.add_argument("--top", type=int, default=5, help="how many languages to list (default 5)")
    p.set_defaults(handler=_detect_language)

    commands.converters["ct2"] = _convert("ct2")
    commands.converters["openai-whisper"] = _convert("openai-whisper")
    commands.converters["hf"] = _convert("hf")
    commands.tour_sections.append(_tour)


def _transcribe(args) -> None:
    from .api import load
    from .output import write_outputs

    model = load(args.model, device=args.device, int8=args.int8)
    formats = list(FORMATS) if args.format == "all" else [args.format]
    out_dir = Path(args.output_dir)
    for path in args.files:
        if not args.quiet and len(args.files) > 1:
            print(f"== {path}", flush=True)
        result = model.transcribe(
            path,
            language=None if args.language == "auto" else args.language,
            task=args.task,
            beam_size=args.beam_size,
            best_of=args.best_of,
            temperature=tuple(args.temperature),
            initial_prompt=args.initial_prompt,
            condition_on_previous_text=args.condition_on_previous_text,
            word_timestamps=args.word_timestamps,
            vad=args.vad,
            batch_size=args.batch_size,
            verbose=not args.quiet,
            progress=not args.quiet and sys.stderr.isatty(),
        )
        for written in write_outputs(result, path, out_dir, formats):
            print(f"wrote {written}", file=sys.stderr)


def _detect_language(args) -> None:
    from .api import load

    model = load(args.model, device=args.device)
    for path in args.files:
        probs = model.detect_language(path)
        best = sorted(probs.items(), key=lambda kv: -kv[1])[: args.top]
        print(f"{path}: " + ", ".join(f"{lang} {p:.3f}" for lang, p in best))


def _convert(source: str):
    def run(input_path, out_dir, args) -> None:
        from ..interop.whisper import convert

        path = convert(source, input_path, out_dir)
        print(f"wrote {path}")

    return run


def _tour(out_dir: Path, quick: bool) -> str:
    from .tour import tour_section

    return tour_section(Path(out_dir), quick)
