"""``genlab watermark detect|embed FILE`` and ``genlab verify FILE``.

``detect`` prints whether genlab's mark is in a file (any format soundfile reads, any rate), the score against its
threshold and the false-positive bound; exit status 0 either way (the answer is the output), 2 for bad input.
``verify`` adds the provenance record the file carries (model, its weights hash, text hash, seed, time). ``embed``
marks a file of your own (16-bit WAV out), e.g. to test the detector against your own transformations.
"""

from __future__ import annotations

import json
import sys

from ..errors import GenlabError


def register(commands) -> None:
    wm = commands.top.add_parser("watermark", help="detect (or add) the watermark genlab puts in every clip it speaks")
    sub = wm.add_subparsers(dest="watermark_command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("detect", help="is genlab's watermark in this audio file?")
    p.add_argument("input", help="audio file (wav, flac, ogg/opus, mp3; any rate)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_detect)
    p = sub.add_parser("embed", help="watermark an audio file (writes a 16-bit WAV)")
    p.add_argument("input", help="audio file")
    p.add_argument("--out", required=True, help="the .wav to write")
    p.set_defaults(handler=_embed)

    p = commands.top.add_parser("verify", help="watermark detection and the provenance record of an audio file")
    p.add_argument("input", help="audio file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_verify)
    commands.tour_sections.append(watermark_tour)


def watermark_tour(out_dir, quick: bool) -> str:
    from .tour import watermark_section

    return watermark_section(out_dir, quick)


def _result(path: str) -> dict:
    from .watermark import detect_file

    d = detect_file(path)
    return {"file": path, "watermark": "detected" if d.detected else "not detected", **d.as_dict()}


def _print(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=1, ensure_ascii=False))
        return
    print(f"{result['file']}: watermark {result['watermark']} (score {result['score']:.2f}, threshold "
          f"{result['threshold']:.2f}, false-positive bound {result['p_value']:.2g}, speed {result['speed']:g}, "
          f"{result['seconds']:.1f} s examined)")
    record = result.get("provenance")
    if "provenance" in result:
        if record is None:
            print("provenance: none recorded in the file")
        else:
            for k, v in record.items():
                print(f"  {k}: {json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}")


def _detect(args) -> None:
    _print(_result(args.input), args.json)


def _verify(args) -> None:
    from .record import read_record

    result = _result(args.input)
    result["provenance"] = read_record(args.input)
    _print(result, args.json)


def _embed(args) -> None:
    import soundfile

    from ..data.audio import _open
    from ..errors import check_writable
    from .watermark import embed

    if not args.out.lower().endswith(".wav"):
        raise GenlabError(f"{args.out}: the output is written as .wav")
    check_writable(args.out)
    with _open(args.input) as f:
        rate = f.samplerate
        audio = f.read(dtype="float32", always_2d=True).mean(axis=1)
    if len(audio) == 0:
        raise GenlabError(f"{args.input}: contains no audio samples")
    soundfile.write(args.out, embed(audio, rate), rate, subtype="PCM_16")
    print(f"wrote {args.out} ({len(audio) / rate:.1f} s, watermarked)", file=sys.stderr)
