"""How far synthetic variety carries: WER/CER of genlab's ``speech-asr`` per language on each held-out split of the
espeak-ng corpus, language-ID accuracy, pocketsphinx on the same English audio, and real human speech (jfk.flac,
the LibriVox utterances of Debian's pocketsphinx-testdata) beside Whisper base.

    python benchmarks/speech_eval.py [--model speech-asr] [--per-language 50] [--base-corpus 5]

Decoding is genlab's own (:func:`genlab.asr.decoding.decode`): greedy, no timestamps, 30 s windows, at most 224
tokens, the language given (WER) or detected (language ID). Text is normalised before scoring: NFKC, lower case,
punctuation removed, whitespace collapsed; CER is over the normalised characters, spaces included. Writes
``benchmarks/results/speech_asr.json`` with the command, the sample counts and the corpus seed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import torch

from genlab.eval.text import edit_distance

ROOT = Path(__file__).resolve().parent.parent
JFK = ROOT.parent / "shared" / "data" / "jfk.flac"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


# ---------------------------------------------------------------------------------------------------------------
# Scoring


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = "".join(" " if unicodedata.category(c).startswith("P") and c != "'" else c for c in text)
    return " ".join(text.replace("'", "").split())


def error_rates(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """Corpus WER and CER: total edits over total reference words / characters."""
    w_err = w_n = c_err = c_n = 0
    for r, h in zip(refs, hyps):
        r, h = normalise(r), normalise(h)
        w_err += edit_distance(r.split(), h.split())
        w_n += len(r.split())
        c_err += edit_distance(list(r), list(h))
        c_n += len(r)
    return {"wer": round(w_err / max(1, w_n), 4), "cer": round(c_err / max(1, c_n), 4), "n": len(refs)}


# ---------------------------------------------------------------------------------------------------------------
# Recognisers


def window(audio: np.ndarray, n_mels: int) -> torch.Tensor:
    from genlab.data.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim

    return pad_or_trim(log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES), 3000)  # (n_mels, 3000)


@torch.no_grad()
def transcribe_batch(pipe, audios: list[np.ndarray], languages: list[str | None], batch: int = 8):
    """Greedy decode of 30 s windows with genlab's decoder; returns (texts, detected languages)."""
    from genlab.asr.decoding import DecodingOptions, decode

    texts, detected = [None] * len(audios), [None] * len(audios)
    order = sorted(range(len(audios)), key=lambda i: (languages[i] or "", len(audios[i])))
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        mel = torch.stack([window(audios[i], pipe.model.config.n_mels) for i in rows])
        for lang in dict.fromkeys(languages[i] for i in rows):
            sub = [k for k, i in enumerate(rows) if languages[i] == lang]
            # Corpus transcripts are at most 135 characters (spelled models emit one token per character);
            # the cap bounds the cost of a model that loops.
            opts = DecodingOptions(language=lang, without_timestamps=True, sample_len=224)
            for k, r in zip(sub, decode(pipe.model, mel[sub], pipe.tokenizer, opts)):
                texts[rows[k]], detected[rows[k]] = r.text.strip(), r.language
    return texts, detected


def pocketsphinx_transcribe(audios: list[np.ndarray]) -> list[str] | None:
    try:
        from pocketsphinx import Decoder
    except ImportError:
        return None
    decoder = Decoder(samprate=16000, logfn="/dev/null")
    out = []
    for a in audios:
        pcm = (np.clip(a, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        out.append(hyp.hypstr if hyp is not None else "")
    return out


def real_speech() -> tuple[list[str], list[np.ndarray], list[str]]:
    from genlab.data.audio import load_audio

    names, audios, refs = [], [], []
    if JFK.exists():
        names.append("jfk.flac")
        audios.append(load_audio(JFK))
        refs.append(JFK_TEXT)
    if (LIBRIVOX / "transcription").exists():
        for line in (LIBRIVOX / "transcription").read_text().splitlines():
            text, _, utt = line.rpartition("(")
            utt = utt.strip(") ")
            names.append(utt + ".wav")
            audios.append(load_audio(LIBRIVOX / f"{utt}.wav"))
            refs.append(text.replace("<s>", "").replace("</s>", "").strip())
    return names, audios, refs


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="speech-asr")
    p.add_argument("--seed", type=int, default=0, help="corpus seed")
    p.add_argument("--per-language", type=int, default=50, help="utterances per language and split")
    p.add_argument("--base-corpus", type=int, default=5,
                   help="utterances per language and split decoded by Whisper base too (0: none)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speech_asr.json"))
    p.add_argument("--write-metrics", action="store_true",
                   help="also record the WERs in the bundled model's metrics.json (src/genlab/assets/speech-asr)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from genlab.asr import load
    from genlab.data import speech

    corpus = speech.load(args.seed)
    pipe = load(args.model)
    result: dict = {
        "command": "python benchmarks/speech_eval.py " + shlex.join(argv),
        "model": args.model, "corpus": corpus.directory.name, "corpus_seed": args.seed,
        "decoding": "genlab.asr.decoding.decode: greedy, without timestamps, 30 s window",
        "normalisation": "NFKC, lower case, punctuation and apostrophes removed",
        "splits": {},
    }
    t0 = time.perf_counter()
    for split in ("test_sentences", "test_voices", "test_accents"):
        ids = corpus.split(split)
        by_lang: dict[str, list[int]] = {}
        for i in ids:
            by_lang.setdefault(corpus.utterances[i].language, []).append(i)
        rows = [i for lang in sorted(by_lang) for i in by_lang[lang][: args.per_language]]
        audios = [corpus.audio(i) for i in rows]
        langs = [corpus.utterances[i].language for i in rows]
        refs = [corpus.utterances[i].text for i in rows]
        hyps, _ = transcribe_batch(pipe, audios, langs)
        # Language ID: one decoder step after <|startoftranscript|> on the same windows.
        from genlab.asr.decoding import detect_language

        guesses = []
        for start in range(0, len(rows), 16):
            mel = torch.stack([window(a, pipe.model.config.n_mels) for a in audios[start : start + 16]])
            guesses += detect_language(pipe.model, pipe.model.embed_audio(mel), pipe.tokenizer)[0]
        entry: dict = {"per_language": {}, "examples": []}
        for lang in sorted(by_lang):
            k = [j for j, g in enumerate(langs) if g == lang]
            entry["per_language"][lang] = {
                **error_rates([refs[j] for j in k], [hyps[j] for j in k]),
                "language_id_accuracy": round(float(np.mean([guesses[j] == lang for j in k])), 4),
            }
        entry["all"] = {**error_rates(refs, hyps),
                        "language_id_accuracy": round(float(np.mean([g == t for g, t in zip(guesses, langs)])), 4)}
        entry["examples"] = [{"lang": langs[j], "ref": refs[j], "hyp": hyps[j]} for j in range(0, len(rows), 25)]
        en = [j for j, g in enumerate(langs) if g == "en"]
        ps = pocketsphinx_transcribe([audios[j] for j in en])
        if ps is not None and en:
            entry["pocketsphinx_en"] = error_rates([refs[j] for j in en], ps)
        if args.base_corpus:
            base = load("base")
            first = {lang: [m for m, g in enumerate(langs) if g == lang][: args.base_corpus] for lang in by_lang}
            k = [j for lang in sorted(by_lang) for j in first[lang]]
            bh, _ = transcribe_batch(base, [audios[j] for j in k], [langs[j] for j in k])
            entry["whisper_base_subset"] = {
                lang: error_rates([refs[j] for j in k if langs[j] == lang], [bh[n] for n, j in enumerate(k)
                                                                             if langs[j] == lang])
                for lang in sorted(by_lang)
            }
            entry["speech_asr_same_subset"] = {
                lang: error_rates([refs[j] for j in k if langs[j] == lang], [hyps[j] for j in k if langs[j] == lang])
                for lang in sorted(by_lang)
            }
        result["splits"][split] = entry
        print(split, json.dumps(entry["all"]), f"{time.perf_counter() - t0:.0f} s", flush=True)

    # Real human speech, English: the from-scratch model beside Whisper base and pocketsphinx.
    names, audios, refs = real_speech()
    real: dict = {"files": names, "references": refs}
    for name, model_name in (("speech_asr", args.model), ("whisper_base", "base")):
        try:
            model = load(model_name)
        except Exception as e:  # noqa: BLE001 - report, do not hide, a model that is not installed
            real[name] = {"error": str(e)}
            continue
        hyps, _ = transcribe_batch(model, audios, ["en"] * len(audios))
        real[name] = {**error_rates(refs, hyps), "hypotheses": hyps}
    ps = pocketsphinx_transcribe(audios)
    if ps is not None:
        real["pocketsphinx"] = {**error_rates(refs, ps), "hypotheses": ps}
    result["real_speech_en"] = real
    result["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: {m: v.get("wer") for m, v in real.items() if isinstance(v, dict)} for k in ["real"]}))
    if args.write_metrics:
        path = ROOT / "src" / "genlab" / "assets" / "speech-asr" / "metrics.json"
        metrics = json.loads(path.read_text()) if path.exists() else {}
        metrics.update({
            "wer": {split: e["all"]["wer"] for split, e in result["splits"].items()},
            "cer": {split: e["all"]["cer"] for split, e in result["splits"].items()},
            "wer_n": {split: e["all"]["n"] for split, e in result["splits"].items()},
            "real_speech_en_wer": {k: v["wer"] for k, v in real.items() if isinstance(v, dict) and "wer" in v},
            "eval_command": result["command"],
        })
        path.write_text(json.dumps(metrics, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
