"""``genlab speak``, ``genlab train tts|vocoder|speaker`` and ``genlab data tts``.

``genlab speak "text" --out OUT.wav`` says the text in the built-in voice; ``--voice REF.wav --consent "..."``
clones the voice of a 3-10 s reference. Every input is checked before the model loads: the text (or
``--text-file``), the output path (a writable .wav), the reference (see :mod:`.voice`), the consent. The file is
always watermarked and carries its provenance (model hashes, text, seed, voice, consent).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import GenlabError, check_writable


def register(commands) -> None:
    p = commands.top.add_parser("speak", help="text to speech (watermarked); --voice REF.wav clones a voice")
    p.add_argument("text", nargs="?", default=None, help="what to say (or --text-file)")
    p.add_argument("--text-file", default=None, help="read the text from a file (streamed sentence by sentence)")
    p.add_argument("--out", required=True, help="the .wav to write")
    p.add_argument("--voice", default=None, metavar="REF", help="a 3-10 s recording of the voice to clone")
    p.add_argument("--consent", default=None,
                   help="with --voice: the speaker's consent to be cloned, recorded in the file's metadata")
    p.add_argument("--speaker", type=int, default=0, help="built-in voice number (default 0)")
    p.add_argument("--model", default="speech-tts", help="bundled model name or bundle/checkpoint directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pace", type=float, default=1.0, help="speaking rate: 1.2 is 20 %% faster")
    p.set_defaults(handler=_speak)

    from ..cli import add_train_command

    add_train_command(commands, "tts", help="train the acoustic model (FastSpeech on the espeak corpus)",
                      presets=["speech-tts", "tiny"], default="speech-tts", handler=_train_acoustic)
    add_train_command(commands, "vocoder", help="train the vocoder (HiFi-GAN or Vocos) on the espeak corpus",
                      presets=["speech-vocoder", "speech-vocos", "tiny", "tiny-vocos"], default="speech-vocos",
                      handler=_train_vocoder)
    add_train_command(commands, "speaker", help="train the GE2E speaker encoder (real voices + espeak voices)",
                      presets=["speech-speaker", "tiny"], default="speech-speaker", handler=_train_speaker)
    d = commands.data.add_parser("tts", help="build the TTS corpus (espeak voices, phoneme durations; genlab[speech])")
    d.add_argument("--train", type=int, default=2000, help="training utterances (default 2000)")
    d.add_argument("--test", type=int, default=100)
    d.add_argument("--rebuild", action="store_true")
    d.set_defaults(handler=_data)
    commands.tour_sections.append(tts_tour)


def tts_tour(out_dir, quick: bool) -> str:
    from .tour import tts_section

    return tts_section(out_dir, quick)


def _check(args) -> tuple[str | None, Path]:
    if args.text is not None and args.text_file is not None:
        raise GenlabError("give the text or --text-file, not both")
    if args.text_file is not None:
        path = Path(args.text_file)
        if not path.is_file():
            raise GenlabError(f"{path}: no such text file")
        try:
            with open(path, encoding="utf-8") as f:
                head = f.read(65536)
        except UnicodeDecodeError:
            raise GenlabError(f"{path}: not UTF-8 text") from None
        if not head.strip():
            raise GenlabError(f"{path}: the text file is empty")
        text = None
    else:
        from .api import check_text

        text = check_text(args.text or "")
    out = Path(args.out)
    if out.suffix.lower() != ".wav":
        raise GenlabError(f"{out}: speech is written as .wav (it carries its provenance inside)")
    check_writable(out)
    if args.consent is not None and args.voice is None:
        raise GenlabError("--consent goes with --voice (the consent of the person whose voice is cloned)")
    if args.voice is not None and not (args.consent or "").strip():
        raise GenlabError("cloning a voice needs the speaker's consent: --consent \"I, NAME, agree to ...\"")
    if not 0.25 <= args.pace <= 4.0:
        raise GenlabError(f"--pace {args.pace:g}: choose between 0.25 and 4")
    return text, out


def _lines(path: str):
    with open(path, encoding="utf-8") as f:
        yield from f


def _speak(args) -> None:
    import time

    from .api import Voice, load, speak

    text, out = _check(args)
    reference = None
    if args.voice is not None:
        from .voice import read_reference

        reference = read_reference(args.voice)  # checked before the model loads
    loaded = load(args.model)
    if not 0 <= args.speaker < loaded.cfg.n_speakers:
        raise GenlabError(f"--speaker {args.speaker}: this model has voices 0-{loaded.cfg.n_speakers - 1}")
    voice = Voice(speaker=args.speaker)
    if reference is not None:
        if loaded.speaker_encoder is None or not loaded.cfg.speaker_dim:
            raise GenlabError(f"{args.model}: this model cannot clone voices (it has no speaker encoder)")
        from .voice import dvector

        audio16, described = reference
        voice = Voice(args.speaker, dvector(loaded.speaker_encoder, audio16), described)
    t0 = time.perf_counter()
    source = text if text is not None else _lines(args.text_file)
    label = None if text is not None else f"file:{Path(args.text_file).name}"
    record = speak(loaded, source, out, voice, seed=args.seed, pace=args.pace, consent=args.consent,
                   text_label=label)
    took = time.perf_counter() - t0
    print(f"wrote {out}: {record['seconds']:.1f} s of speech in {took:.1f} s (real-time factor "
          f"{took / max(record['seconds'], 1e-9):.2f}), watermarked, provenance in the file", file=sys.stderr)


def _train_acoustic(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import ACOUSTIC_PRESETS, AcousticTask

    train_preset(args, "tts", ACOUSTIC_PRESETS, AcousticTask,
                 lambda task: f"{count_parameters(task.model)} parameters, {task.num_examples} utterances")


def _train_vocoder(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import VOCODER_PRESETS, VocoderTask

    train_preset(args, "vocoder", VOCODER_PRESETS, VocoderTask,
                 lambda task: f"{count_parameters(task.generator)} generator parameters, {task.num_examples} "
                 "utterances")


def _train_speaker(args) -> None:
    from ..cli import train_preset
    from .speaker import SPEAKER_PRESETS, SpeakerTask

    train_preset(args, "speaker", SPEAKER_PRESETS, SpeakerTask, lambda task: f"{len(task.pool.names)} voices, "
                 f"{len(task.eval_pool.names) if task.eval_pool else 0} held out")


def _data(args) -> None:
    from .data import TTSCorpusSize, build

    corpus = build(TTSCorpusSize(args.train, args.test), rebuild=args.rebuild)
    m = corpus.manifest
    print(f"tts corpus: {len(m['utterances'])} utterances, {len(m['voices'])} voices, {len(m['vocabulary'])} "
          f"phonemes, built in {m['build_seconds']:.0f} s at {corpus.dir}")
