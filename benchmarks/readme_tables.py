"""Rewrite the README's results block from benchmarks/results/*.json (numbers are never typed by hand).

    python benchmarks/readme_tables.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(v, digits=3):
    return "—" if v is None else (f"{v:.{digits}g}" if isinstance(v, float) else str(v))


def diffusion_sweep() -> list[str]:
    r = _load("diffusion_sweep")
    if not r or not r.get("rows"):
        return ["### Pixel diffusion: sampler sweep", "", "_Not measured yet._", ""]
    out = ["### Pixel diffusion: FID against sampling steps (`emoji32-ddpm`)", "",
           f"FID / precision / recall in genlab's emoji feature space, {r['n']} samples per configuration against the "
           f"held-out split, seed {r['seed']}, bf16 autocast: {r.get('bf16')}. Real-vs-real floor (the same number "
           f"of real training images against the held-out split): **{_fmt(r['real_floor_fid'], 4)}**. "
           + ("All configurations measured." if r.get("complete") else
            "**Partial**: the sweep is resumable and not finished; configurations not yet measured are not shown."),
           f"Command: `{r['command']}`; plot: `benchmarks/results/diffusion_sweep.svg`. "
           "Near-copies: the fraction of samples closer (pixels) to a training image than the 5th percentile of "
           "train-to-train nearest-neighbour distances. Seconds: wall time to draw the samples on one thread, summed "
           "over batches; the machine ran other jobs (or paused the sweep) during many configurations, so it is "
           "no speed measurement (the UNet speed table is).", "",
           "| sampler | steps | model evals | FID | precision | recall | coverage | seconds | near-copies |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        mem = (row.get("memorisation") or {}).get("pixel", {})
        out.append(f"| {row['sampler']} | {row['steps']} | {row['model_evaluations']} | {_fmt(row['fid'], 4)} | "
                   f"{_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row.get('coverage'))} | "
                   f"{row['seconds']:.0f} | {_fmt(mem.get('frac_closer_than_p5'))} |")
    if r.get("best"):
        b = r["best"]
        out += ["", f"Best: {b['sampler']} at {b['steps']} steps, FID {_fmt(b['fid'], 4)} "
                    f"(floor {_fmt(r['real_floor_fid'], 4)})."]
    return out + [""]


def diffusion_speed() -> list[str]:
    r = _load("diffusion_speed")
    if not r:
        return ["### Pixel diffusion: speed against diffusers", "", "_Not measured yet._", ""]
    out = ["### UNet speed: genlab vs diffusers `UNet2DModel` (identical config and weights, side by side)", "",
           f"Median of {next(iter(r['cases'].values()))['repeats']} alternating pairs; ratio = genlab time / "
           f"diffusers time (below 1: genlab faster). Max output difference {r['max_abs_output_difference']:.1e}. "
           f"Command: `{r['command']}`.", "", "| case | genlab (s) | diffusers (s) | ratio |", "|---|---|---|---|"]
    for name, c in r["cases"].items():
        out.append(f"| {name} | {c['a_median_s']:.3f} | {c['b_median_s']:.3f} | {c['ratio_a_over_b_median']:.3f} |")
    return out + [""]


def emoji_features() -> list[str]:
    r = _load("emoji_features")
    if not r:
        return []
    acc = {k: v for k, v in r.items() if "acc" in k and isinstance(v, (int, float))}
    return ["### The FID feature network", "",
            f"`{r.get('asset')}` ({r.get('params')} parameters, sha256 `{r.get('sha256', '')[:16]}…`), trained on "
            f"the emoji training split only. " + ", ".join(f"{k}: {_fmt(v)}" for k, v in acc.items())
            + f". Command: `{r.get('command')}`.", ""]


def asr_speed(name: str = "asr_speed", title: str = "2 threads") -> list[str]:
    r = _load(name)
    if not r:
        return []
    out = [f"### Whisper base: real-time factor on a real-speech file, side by side ({title})", "",
           f"{r['audio']['seconds']:.0f} s of real speech ({r['audio']['source']}); same base weights for every "
           f"system; RTF = seconds / audio seconds (lower is faster), medians of repeats; {r['machine']}. "
           + ("**Partial**: not every system and repeat finished. " if r.get("partial") else "")
           + f"Command: `{r['command']}`.", "",
           "| system / beam | RTF (wall) | RTF (CPU) | WER | segments | utterance starts / ends within 0.5 s "
           "| segments reaching over 0.5 s into a pause |", "|---|---|---|---|---|---|---|"]
    for name, run in r["runs"].items():
        if isinstance(run, dict) and "rtf" in run:
            t = run.get("timing", {})
            bounds = f"{t['starts_within_0.5s']} / {t['ends_within_0.5s']} of {t['utterances']}" if t else "—"
            out.append(f"| {name} | {run['rtf']:.3f} | {_fmt(run.get('cpu_rtf'))} | {_fmt(run.get('wer'))} | "
                       f"{run.get('n_segments', '—')} | {bounds} | {t.get('segments_in_gaps', '—')} |")
    # A system whose transcript is wrong did different work: its time is no basis for a speed ratio.
    wrong = sorted(n for n, run in r["runs"].items() if isinstance(run, dict) and run.get("wer", 0) > 0.2)
    if wrong:
        out += ["", f"**Not comparable** (WER above 0.2, so the output itself is wrong, most likely the benchmark's "
                f"use of that system): {', '.join(wrong)}. It is left out of the ratios below."]
    out += ["", "| genlab speed-up over | wall | CPU |", "|---|---|---|"]
    for name, v in r.get("speedups", {}).items():
        if any(name.endswith(f"vs {w}") for w in wrong):
            continue
        out.append(f"| {name.replace('speedup vs ', 'vs ')} | {_fmt(v.get('wall'))}x | {_fmt(v.get('cpu'))}x |")
    return out + [""]


def asr_speed_longform() -> list[str]:
    # asr_speed_longform_words: the same command after words became timed under the gate (commits 90e7e7c,
    # 77c9974); asr_speed_longform_test, before them, stays in results for the comparison. _test_epyc: the same
    # command on an AMD EPYC (the machine the issue was filed on), where the fp32 ratio falls below 1.
    r = _load("asr_speed_longform_words") or _load("asr_speed_longform_test")
    if r is None:
        return []
    files = list(next(iter(r["speedups"].values()))["per_file"])
    out = ["### Whisper base on long-form audio it was not developed on: speed against faster-whisper", "",
           "Wall-time ratio (faster-whisper / genlab, > 1 means genlab is faster) per held-out test file, same "
           "weights, each system in its own process, on two machines (rows marked by CPU).", ""]
    runs = [("Xeon", r)] + ([("EPYC", e)] if (e := _load("asr_speed_longform_test_epyc")) else [])
    for cpu, run in runs:
        out.append(f"- {cpu}: {run['machine']}. Command: `{run['command']}`.")
    out += ["", "| CPU | precision / beam | " + " | ".join(files) + " | median | worst |",
            "|---|---|" + "---|" * (len(files) + 2)]
    for cpu, run in runs:
        for key, d in run["speedups"].items():
            cells = " | ".join(f"{d['per_file'][f]:.2f}x" for f in files)
            out.append(f"| {cpu} | {key.replace(' vs ', ' / ')} | {cells} | {d['median_across_files']:.2f}x | "
                       f"{d['worst_ratio']:.2f}x ({d['worst_file']}) |")
    return out + [""]


def asr_longform() -> list[str]:
    r = _load("asr_longform")
    if r is None:
        return []
    runs = r["test_runs"]
    files = list(dict.fromkeys(k.split("/")[0] for k in runs))
    out = ["### Whisper base on long-form audio it was not developed on: words", "",
           "Held-out test files of `benchmarks/longform.py` (real speech of one speaker each, pauses and non-speech "
           "events between utterances), same weights, voice-activity gate and word timestamps on in both systems. "
           "WER where the source has its text; invented: words more than 0.3 s from every utterance; boundary "
           "errors: segment bounds in a pause or event more than 0.5 s from every utterance. "
           f"Command: `{r['command']}`; {r.get('runs_note', '')}", "",
           "| file | beam | WER genlab / faster-whisper | invented | boundary errors |", "|---|---|---|---|---|"]
    for f in files:
        for beam in (1, 5):
            g, w = runs.get(f"{f}/genlab-fp32/beam{beam}"), runs.get(f"{f}/faster-whisper-fp32/beam{beam}")
            if g is None or w is None:
                continue
            out.append(f"| {f} | {beam} | {_fmt(g['wer'])} / {_fmt(w['wer'])} | {g['invented_words']} / "
                       f"{w['invented_words']} | {g['boundaries']['errors']} / {w['boundaries']['errors']} |")
    return out + [""] + _longform_pooled()


def _longform_pooled() -> list[str]:
    """The same texts pooled over the test files, with the paired bootstrap's interval of the difference."""
    r = _load("longform_pooled_test")
    if r is None:
        return []
    parts = []
    for beam, v in r["beams"].items():
        p = v["pooled"]
        lo, hi = (100 * x for x in p["difference_95"])
        parts.append(f"{beam.replace('beam', 'beam ')}: genlab {100 * p['wer'][0]:.1f} %, "
                     f"faster-whisper {100 * p['wer'][1]:.1f} % "
                     f"({p['errors'][0]} and {p['errors'][1]} errors in {p['words']} words; difference "
                     f"{100 * p['difference']:+.1f} points, 95 % interval {lo:+.1f} to {hi:+.1f})")
    return [f"Pooled over the files with text, the difference in WER with a paired bootstrap over utterances "
            f"({r['draws']} draws, seed {r['seed']}; `{r['command']}`): " + "; ".join(parts) + ".", ""]


def speech_asr() -> list[str]:
    r = _load("speech_asr")
    if not r:
        return []
    bundled = (ROOT / "src" / "genlab" / "assets" / "speech-asr" / "model.safetensors").exists()
    out = [f"### Recogniser trained from scratch on the synthetic corpus (`speech-asr`, "
           f"{'bundled' if bundled else 'not bundled'})", "",
           f"Greedy decoding with genlab's decoder; corpus `{r['corpus']}` (seed {r['corpus_seed']}); "
           f"Command: `{r['command']}`. Per-language numbers are in the result file.", "",
           "| held-out split | n | WER | CER | language ID | pocketsphinx WER (English part) |",
           "|---|---|---|---|---|---|"]
    for split, v in r["splits"].items():
        a = v.get("all", {})
        ps = v.get("pocketsphinx_en", {})
        out.append(f"| {split} | {a.get('n', '—')} | {_fmt(a.get('wer'))} | {_fmt(a.get('cer'))} | "
                   f"{_fmt(a.get('language_id_accuracy'))} | {_fmt(ps.get('wer'))} (n={ps.get('n', '—')}) |")
    real = r.get("real_speech_en", {})
    out += ["", "Real human speech (jfk.flac + 5 LibriVox utterances): "
            + ", ".join(f"{k} WER {_fmt(v.get('wer'))} (n={v.get('n')})" for k, v in real.items()
                        if isinstance(v, dict) and "wer" in v) + "."]
    return out + [""]


def other_results(known: set[str]) -> list[str]:
    rest = sorted(p.stem for p in RESULTS.glob("*.json") if p.stem not in known)
    if not rest:
        return []
    out = ["### Other result files", ""]
    for name in rest:
        r = _load(name)
        out.append(f"- `benchmarks/results/{name}.json` — `{r.get('command', '?')}`")
    return out + [""]


def tts_eval() -> list[str]:
    """The bundled voice's tts_eval.json; until it exists, the newest measurement of an intermediate checkpoint."""
    r = _load("tts_eval")
    final = r is not None
    if r is None:
        r = max((_load(p.stem) for p in RESULTS.glob("tts_eval_*.json")), key=lambda x: x["date"], default=None)
    if r is None:
        return []
    out = ["### Text to speech: held-out sentences beside espeak-ng and piper", "",
           ("" if final else "_An intermediate checkpoint, not the bundled voice._ ")
           + f"Model `{r['model']}` (acoustic weights {r['model_hashes']['acoustic']}, vocoder {r['vocoder']}); "
           f"{r['n_sentences']} held-out sentences: {r['sentences']}; word and character error rates of two "
           f"independent recognisers; real-time factor on {r['machine']['threads']} threads ({r['machine']['cpu']}). "
           f"Command: `{r['command']}`.", "",
           "| system | WER (Whisper base) | CER (Whisper base) | WER (pocketsphinx) | real-time factor |",
           "|---|---|---|---|---|"]
    for name, row in r["systems"].items():
        out.append(f"| {name} | {_fmt(row['whisper_base']['wer'])} | {_fmt(row['whisper_base']['cer'])} | "
                   f"{_fmt(row['pocketsphinx']['wer'])} | {_fmt(row['real_time_factor'])} |")
    c = r.get("cloning")
    if c:
        out += ["", f"Cloning {c['n_speakers']} held-out real speakers, judged by {c['judge']}: clone against "
                f"reference {_fmt(c['clone_vs_reference'])}, beside the same speaker's other clips (ceiling) "
                f"{_fmt(c['ceiling_same_speaker'])} and other speakers (floor) {_fmt(c['floor_other_speakers'])}."]
    return out + [""]


def watermark_eval() -> list[str]:
    r = _load("watermark_eval")
    if r is None:
        return []
    fp, sdr, pesq = r["false_positives"], r["si_sdr_db"], r.get("pesq_wb_marked_vs_unmarked") or {}
    dev = _load("watermark_eval_dev")
    chosen = (f" The settings were chosen on other clips (`{dev['command']}`: espeak's training sentences and the "
              f"codec corpus's training speakers), where a 1 s crop was detected at "
              f"{dev['detection']['crop 1 s']['rate']:.1%}." if dev else "")
    out = ["### Watermark: detection under attacks, false positives on clean audio", "",
           f"{r['n_marked']} marked clips and {r['n_clean']} clean clips (real speech, espeak, MP3 round trips), "
           f"seed {r['seed']}. False positives: {fp['count']} of {fp['n']} (95% interval up to {fp['ci95'][1]:.2%}; "
           f"the detector's threshold bounds the rate at {fp['guaranteed_bound']:.1%} per file by construction). "
           f"SI-SDR of marked vs unmarked: mean {sdr['mean']} dB (min {sdr['min']}); wide-band PESQ "
           f"{pesq.get('mean', '—')} (n={pesq.get('n', '—')}). Command: `{r['command']}`.{chosen}", "",
           "| attack | detected | rate | 95% interval |", "|---|---|---|---|"]
    for attack, d in r["detection"].items():
        low, high = d["ci95"]
        out.append(f"| {attack} | {d['detected']} / {d['n']} | {d['rate']:.3f} | {low:.3f}-{high:.3f} |")
    return out + [""]


TRIALS = (("codec_eval_istft_[0-9]*.json", "Vocos decoder on stage 2's frozen tokens"),
          ("codec_eval_spectral_[0-9]*.json", "frequency-domain codec (STFT encoder, Vocos decoder)"),
          ("codec_eval_spectral_gan_*.json", "frequency-domain codec, adversarial stage"))


def codec_eval() -> list[str]:
    # codec_eval: the bundled speech-codec; codec_eval_seanet (the first full run) and codec_eval_stage1: the old
    # two-stage recipe; codec_eval_new_stage1: stage 1 of the three-stage recipe (fan-in initialisation, waveform L1
    # first), measured before its stage 2 had run; codec_eval_gan_<step>: that recipe's stage 2 (GAN) at a step.
    r, stage1, new1 = _load("codec_eval"), _load("codec_eval_stage1"), _load("codec_eval_new_stage1")
    seanet = _load("codec_eval_seanet")
    # Only codec_eval_gan_<step>: the other codec_eval_gan_* files (bands, unquantised) are listed with their commands.
    steps = [p.stem for p in RESULTS.glob("codec_eval_gan_*.json") if re.fullmatch(r"codec_eval_gan_\d+", p.stem)]
    gans = sorted((_load(name) for name in steps), key=lambda g: g["model"]["step"])
    # codec_eval_istft_<step>: a Vocos decoder learnt on stage 2's frozen encoder and codebooks;
    # codec_eval_spectral_<step>: the frequency-domain codec (STFT encoder, Vocos decoder) from scratch;
    # codec_eval_spectral_gan_<step>: its second stage, with the discriminator.
    trials = [(label, res) for pattern, label in TRIALS
              for res in sorted((_load(p.stem) for p in RESULTS.glob(pattern)), key=lambda g: g["model"]["step"])]
    if r is None:
        return []
    c, model = r["clips"], r.get("model")
    out = ["### Neural audio codec: held-out speakers, beside Opus", "",
           f"{c['n']} clips ({c['seconds']} s) of speakers held out of training ({', '.join(c['speakers'])}), "
           f"{c['min_seconds']:g}-{c['max_seconds']:g} s each, {c['sample_rate']} Hz, seed {c['seed']}. "
           f"{r['opus_note']}; Opus's column gives the bitrate its files really have. Mel: multi-scale log-mel "
           f"distance (lower is better). Command: `{r['command']}`"
           + (f"; the rows of the first SEANet run (the old two-stage recipe, not bundled): `{seanet['command']}` "
              f"(weights {seanet['model']['weights_hash']})" if seanet else "")
           + (f"; the stage-1 rows (the recipe's first stage alone, for comparison, not chosen on these clips): "
              f"`{stage1['command']}` (weights {stage1['model']['weights_hash']})" if stage1 else "")
           + (f"; the rows of the new recipe's stage 1 (step {new1['model'].get('step')}, before its stage 2; the "
              f"same export folder, rewritten): `{new1['command']}` (weights {new1['model']['weights_hash']})"
              if new1 else "")
           + "".join(f"; the rows of its stage 2 (GAN) at step {g['model']['step']}: `{g['command']}` (weights "
                     f"{g['model']['weights_hash']})" for g in gans)
           + "".join(f"; the rows of the {label} at step {v['model']['step']}: `{v['command']}` (weights "
                     f"{v['model']['weights_hash']})" for label, v in trials) + ".", "",
           "| system | kbps | SI-SDR mean (median), dB | mel | PESQ wb | WER (Whisper base, it) |",
           "|---|---|---|---|---|---|"]
    runs = [("", r)] + ([("first SEANet run: ", seanet)] if seanet else [])
    runs += [("stage 1 only: ", stage1)] if stage1 else []
    runs += ([("new recipe, stage 1: ", new1)] if new1 else [])
    runs += [(f"new recipe, stage 2 at step {g['model']['step']}: ", g) for g in gans]
    runs += [(f"{label}, step {v['model']['step']}: ", v) for label, v in trials]
    for label, res in runs:
        wer = res.get("wer_whisper_base_it") or {}
        for name, row in res["results"].items():
            if label and not name.startswith("genlab"):
                continue
            kbps = "—" if row["kbps"] is None else f"{row['kbps']:g}"
            kbps += f" ({row['kbps_measured']:g} measured)" if "kbps_measured" in row else ""
            out.append(f"| {label}{name.split('@')[0]} | {kbps} | {_fmt(row['si_sdr'])} ({_fmt(row['si_sdr_median'])})"
                       f" | {_fmt(row['mel'])} | {_fmt(row.get('pesq'))} | {_fmt((wer.get(name) or {}).get('wer'))} |")
    if model is None:
        return out + ["", "_The codec column is not measured yet (no trained model)._", ""]
    original = (r.get("wer_whisper_base_it") or {}).get("original", {})
    out += ["", f"Model: `{model['name']}`, weights {model['weights_hash']}. WER: {original.get('n', '—')} Italian "
            f"prompts of the held-out speaker, greedy; the original audio's WER is {_fmt(original.get('wer'))} (the "
            "floor); above 1, Whisper writes more words than were said."]
    usage = r.get("codebook_usage") or []
    if usage:
        out += ["", f"Codebook usage over these clips ({usage[0]['frames']} frames, {model['codebook_size']} codes a "
                "level), level: perplexity / codes never used: "
                + "; ".join(f"{u['level']}: {u['perplexity']:g} / {u['dead_codes']}" for u in usage) + "."]
    return out + [""]


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def clip_eval() -> list[str]:
    r = _load("clip_eval")
    if r is None:
        return []
    names = list(r["models"])
    out = ["### CLIP: zero-shot and retrieval on held-out data, each beside chance", "",
           f"Models: {', '.join(f'`{n}`' for n in names)}; seed {r.get('seed')}; command: `{r['command']}`. "
           "Zero-shot: top-1 with prompt ensembling (templates in the result file); retrieval on the held-out test "
           "pairs with their captions as given.", "",
           "| benchmark | n | chance | majority class | " + " | ".join(f"`{n}`" for n in names) + " |",
           "|---|---|---|---|" + "---|" * len(names)]
    first = r["models"][names[0]]
    rows = [("Fashion-MNIST, as distributed", ("fashion_mnist", "as_distributed")),
            ("Fashion-MNIST, inverted (dark on white)", ("fashion_mnist", "inverted")),
            ("held-out emoji -> Unicode group", ("emoji_groups_heldout_items",)),
            ("held-out Tux Paint categories", ("heldout_categories", "tuxpaint")),
            ("held-out openclipart categories", ("heldout_categories", "openclipart"))]

    def get(model, keys):
        for k in keys:
            model = (model or {}).get(k)
        return model

    for label, keys in rows:
        ref = get(first, keys)
        if not ref:
            continue
        cells = " | ".join(_pct(get(r["models"][n], keys).get("top1")) for n in names)
        out.append(f"| {label} | {ref['n']} | {_pct(ref['chance'])} | {_pct(ref.get('majority_class_top1'))} | "
                   f"{cells} |")
    ret = get(first, ("retrieval_test_pairs", "all"))
    if ret:
        for direction in ("image_to_text", "text_to_image"):
            for k in (1, 5, 10):
                key = f"{direction}_R@{k}"
                cells = " | ".join(_pct(get(r["models"][n], ("retrieval_test_pairs", "all")).get(key)) for n in names)
                out.append(f"| retrieval {direction.replace('_', ' ')} R@{k} | {ret['n']} | "
                           f"{_pct(ret['chance'][f'R@{k}'])} | — | {cells} |")
    return out + [""]


def latent_eval_vae() -> list[str]:
    r = _load("latent_eval_vae")
    if r is None:
        return []
    return ["### Latent diffusion: the autoencoder on held-out images", "",
            f"`{r['vae']}` on the {r['n']} held-out emoji at {r['size']} px: PSNR {_fmt(r['psnr'], 4)} dB, SSIM "
            f"{_fmt(r['ssim'])}, FID of the reconstructions {_fmt(r['fid_reconstruction'])} beside the real-data floor "
            f"{_fmt(r['fid_real_train_vs_test'])} (training images against the held-out ones, genlab's emoji "
            f"features). Command: `{r['command']}`.", ""]


def latent_eval_text() -> list[str]:
    r = _load("latent_eval_text")
    if r is None:
        return []
    f = r["real_floor"]
    out = ["### Latent diffusion: text to image on held-out captions, against guidance", "",
           f"`{r['model']}` (weights {r['hashes']['model']}), n = {r['n']} images per row whose prompts cycle through "
           f"the {r['distinct_captions']} captions of the {r['reference']}, {r['sampler']} {r['steps']} steps, "
           f"seed {r['seed']}; FID, precision and recall in genlab's emoji features against those held-out images; "
           f"CLIP score (100 x cosine) and prompt retrieval R@1 among the {r['distinct_captions']} captions (chance "
           f"{_pct(f['real_retrieval_chance'])}) by `{r['clip']}`. Command: `{r['command']}` "
           f"({r['machine']['torch']}).", "",
           "| guidance | negative prompt | FID | precision | recall | CLIP score | retrieval R@1 |",
           "|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        out.append(f"| {row['guidance']:g} | {row['negative_prompt'] or '—'} | {_fmt(row['fid'])} | "
                   f"{_fmt(row['precision'])} | {_fmt(row['recall'])} | {_fmt(row['clip_score'])} | "
                   f"{_pct(row['retrieval_at_1'])} |")
    out.append(f"| real-data floor ({f['n']} training images) | — | {_fmt(f['fid'])} | {_fmt(f['precision'])} | "
               f"{_fmt(f['recall'])} | {_fmt(f['real_clip_score'])} (held-out images) | "
               f"{_pct(f['real_retrieval_at_1'])} |")
    d = _load("latent_eval_diversity")
    if d is not None:
        cells = {(row["split"], row["guidance"]): row for row in d["rows"]}
        out += ["", f"Does the noise matter once a prompt is given? {d['prompts_per_split']} captions per split, "
                f"{d['seeds']} noises each: mean per-pixel standard deviation (0-255) across the noises of one prompt "
                f"/ across prompts. Command: `{d['command']}`.", "",
                "| guidance | training captions | held-out captions |", "|---|---|---|"]
        for g in sorted({k[1] for k in cells}):
            out.append(f"| {g:g} | " + " | ".join(
                f"{_fmt(cells[(s, g)]['std_within_prompt'])} / {_fmt(cells[(s, g)]['std_across_prompts'])}"
                for s in ("train", "test")) + " |")
    return out + [""]


def latent_eval_curve() -> list[str]:
    r = _load("latent_eval_curve")
    if r is None:
        return []
    f, models = r["real_floor"], r["models"]
    where = r["gpu"] or r["machine"]["cpu"]
    out = ["### Latent against pixel diffusion: FID at equal training wall time (64 px)", "",
           f"Both trained from scratch on the same {r['training_images']} captioned training images for "
           f"{r['budget_s']:g} s of training clock each ({where}; data loading and the latent model's encoding of "
           f"its training set are not counted, checkpoint writes are; nor is the latent model's frozen autoencoder "
           f"`emoji64-vae`, trained once beforehand and shared by every latent run), one after the other, each with "
           f"its own preset's hyper-parameters; a snapshot about every {r['every_s']:g} s. Each snapshot's EMA weights "
           f"draw n = {r['n']} images ({r['sampler']} {r['steps']} steps, seed {r['seed']}; pixel unconditional, "
           f"latent on the held-out captions at guidance {r['latent_guidance']:g}), scored against the "
           f"{r['reference']} (real-data floor: FID {_fmt(f['fid'])}, precision {_fmt(f['precision'])}, "
           f"recall {_fmt(f['recall'])}). Command: `{r['command']}`"
           + ("." if r.get("complete") else "; **partial**: not every snapshot scored."),
           ""]
    for name, m in models.items():
        c = m["train_config"]
        params = ", ".join(f"{k} {v:.2f}M" for k, v in (m.get("parameters_m") or {}).items())
        out.append(f"- {name}: {m['steps']} steps in {m['seconds']:.0f} s ({_fmt(m['median_s_per_step'])} s/step, "
                   f"about {_fmt(m['checkpoint_writes_s_estimate'])} s of it writing snapshots); batch "
                   f"{c['batch_size']}, lr {c['lr']:g}, warmup {c['warmup_steps']}, cosine over {c['steps']} steps; "
                   f"parameters: {params or '—'}.")
    out += ["", "| model | step | training s | FID | precision | recall |", "|---|---|---|---|---|---|"]
    for pt in sorted(r["points"], key=lambda p: (p["model"] != "pixel", p["seconds"])):
        out.append(f"| {pt['model']} | {pt['step']} | {pt['seconds']:.0f} | {_fmt(pt['fid'])} | "
                   f"{_fmt(pt['precision'])} | {_fmt(pt['recall'])} |")
    return out + [""]


def gan_eval() -> list[str]:
    r = _load("gan_eval")
    if r is None:
        return []
    g, d = r["gan"], r["ddpm"]
    rows = [(f"`{g['model']}` (step {g['step']})", g), (f"`{g['model']}`, truncation psi 0.7", g["psi_0.7"]),
            (f"`{d['model']}` ({d['sampler']} {d['steps']} steps, {d['precision_mode']})", d)]
    out = ["### GAN against diffusion: one evaluation for both", "",
           f"n = {g['n']} samples each against the {g['n_real']} held-out ({g['real_split']}) emoji at 32 px, seed "
           f"{g['seed']}, genlab's emoji features; real-data floor FID {_fmt(g['fid_floor'])}. Command: "
           f"`{r['command']}`.", "",
           "| model | FID | precision | recall | density | coverage | s per image |", "|---|---|---|---|---|---|---|"]
    for label, m in rows:
        out.append(f"| {label} | {_fmt(m['fid'])} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | "
                   f"{_fmt(m['density'])} | {_fmt(m['coverage'])} | {_fmt(m.get('seconds_per_image'))} |")
    ppl, proj = g["ppl"], g["projection"]
    out += ["", f"Perceptual path length ({ppl['z']['n']} pairs, epsilon {ppl['z']['eps']}): z-slerp "
            f"{_fmt(ppl['z']['ppl'])}, w-lerp {_fmt(ppl['w']['ppl'])}. {proj['n']} held-out emoji projected into w "
            f"({proj['steps']} steps): perceptual distance {_fmt(proj['perceptual_mean'])}, pixel RMSE "
            f"{_fmt(proj['pixel_rmse_mean'])} (images in [0, 1]). Sampling time measured with a training running "
            f"beside it: the ratio ({_fmt(r['speedup_gan_over_ddpm_per_image'])}x for the GAN) is the figure to "
            f"quote."]
    return out + [""]


def _video_row(label: str, length: str, b: dict, permanence=None, seconds=None) -> str:
    through = "—" if b["through_bar"] is None else f"{b['through_bar']:.2f} ({b['crossings']})"
    return (f"| {label} | {length} | {_fmt(b['bar_still'], 2)} | {_fmt(b['count_constancy'], 2)} | "
            f"{_fmt(b['count_modal_true'], 2)} | {_fmt(b['count_changes'], 2)} | {_fmt(b['linked'], 2)} | "
            f"{_fmt(b['jerk'], 2)} | {_fmt(b['histogram_step'], 2)} | {through} | {_fmt(permanence, 2)} | "
            f"{_fmt(seconds, 2)} |")


VIDEO_EXTRA = ("video_eval_32",)  # later runs at other lengths (same models, n, sampler and seed): rows appended


def video_eval() -> list[str]:
    r = _load("video_eval")
    if r is None:
        return []
    commands = [r["command"]]
    for name in VIDEO_EXTRA:
        extra = _load(name)
        if extra is None:
            continue
        commands.append(extra["command"])
        for role, m in extra["models"].items():
            r["models"][role]["by_length"] |= m["by_length"]
    sp, joint = r["speed"], r["models"]["joint"]
    fg = next(iter(joint["by_length"].values()))["blobs"]["foreground_on_rendered"]
    out = ["### Video diffusion: coherence of generated clips against rendered ones", "",
           f"n = {joint['n']} clips per model and length, {joint['sampler']} {joint['steps']} steps, seed "
           f"{joint['seed']}; commands: {', '.join(f'`{c}`' for c in commands)}. All columns but permanence are "
           "measured without the sprite "
           "detector (`genlab.video.blobs`: the bar's position, colour blobs, tracks linked by the Hungarian method). "
           "Rendered clips are the ceiling (objects hide behind the bar or touch and merge, so not perfect); the same "
           "clips with their frames shuffled in time, and with every frame from another clip, are floors. Through the "
           "bar: is the object that came out on the other side closer in colours to the one that went in than to "
           "the other object in view (a choice of two, chance 0.5; events in brackets). Permanence is the strict "
           f"sprite detector's. The foreground keeps {_pct(fg['sprite_pixels_kept'])} of the rendered sprites' "
           f"visible pixels and takes {_pct(fg['other_pixels_taken'])} of the other pixels.", "",
           "| clips from | frames | bar still | count constancy | modal count right | count changes | linked | "
           "jerk (px) | colour histogram step | through the bar | permanence | s per clip (sampling) |",
           "|" + "---|" * 12]
    for length, d in joint["by_length"].items():
        for key, m in r["models"].items():
            g = m["by_length"][length]
            out.append(_video_row(key.replace("_", " "), length, g["blobs"]["generated"], g["generated"]["permanence"],
                                  g["sampling_seconds_per_clip"]))
        blobs = d["blobs"]
        out += [_video_row("rendered", length, blobs["rendered"], d["real_train_sprites"]["permanence"]),
                _video_row("rendered, shuffled in time", length, blobs["shuffled"]),
                _video_row("rendered, each frame another clip", length, blobs["mixed"])]
    where = "one GPU" if sp.get("device", "cpu") != "cpu" else f"{sp['threads']} CPU threads"
    out += ["", f"A training step ({sp['clips_per_step']} clips of {sp['frames']} frames, {where}): "
            f"joint {_fmt(sp['train_step_joint_s'])} s, frame by frame {_fmt(sp['train_step_frame_by_frame_s'])} s; "
            f"temporal attention's share {_pct(sp['temporal_share_of_train_step'])} of the step, "
            f"{_pct(sp['temporal_share_of_forward_by_hooks'])} of the forward pass."]
    return out + [""]


SECTIONS = {"diffusion_sweep": diffusion_sweep, "diffusion_speed": diffusion_speed, "emoji_features": emoji_features,
            "asr_speed": lambda: asr_speed("asr_speed", "2 threads, Intel Xeon"),
            "asr_speed_epyc": lambda: asr_speed("asr_speed_epyc", "2 threads, AMD EPYC"),
            "asr_speed_core": lambda: asr_speed("asr_speed_core", "2 threads, AMD EPYC, after the shared core"),
            "asr_speed_longform_test": asr_speed_longform, "asr_speed_longform_words": lambda: [],
            "asr_speed_longform_test_epyc": lambda: [],  # in asr_speed_longform's table
            "asr_speed_longform_test_epyc_f5d2f14": lambda: [],  # the EPYC file before commit afb7d3a, for comparison
            "asr_speed_longform_test_epyc_a2155cf": lambda: [],  # the EPYC file before commits d1a4122 and dc941a8
            "asr_speed_longform_test_epyc_dc941a8": lambda: [],  # the EPYC file before commit aa1fbd9
            "asr_speed_longform_words_fifth": lambda: [],  # the words file before commit b5253c7, for comparison
            "asr_longform": asr_longform,
            "watermark_eval": watermark_eval, "clip_eval": clip_eval, "tts_eval": tts_eval,
            **{p.stem: lambda: [] for p in RESULTS.glob("tts_eval_*.json")},  # intermediate: in tts_eval's section
            "codec_eval": codec_eval, "codec_eval_stage1": lambda: [],  # its rows are in codec_eval's table
            "latent_eval_vae": latent_eval_vae, "latent_eval_text": latent_eval_text,
            "latent_eval_diversity": lambda: [],  # its table is part of latent_eval_text's section
            "latent_eval_curve": latent_eval_curve, "gan_eval": gan_eval,
            "video_eval": video_eval, **{name: lambda: [] for name in VIDEO_EXTRA},  # in video_eval's table
            "speech_asr": speech_asr}
EXTRA_SECTIONS: list = []  # (names, fn) pairs added by other families' table writers


def main() -> None:
    lines: list[str] = []
    known = set(SECTIONS)
    for fn in SECTIONS.values():
        lines += fn()
    for names, fn in EXTRA_SECTIONS:
        known |= set(names)
        lines += fn()
    lines += other_results(known)
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = "<!-- results:start -->\n" + "\n".join(lines).rstrip() + "\n<!-- results:end -->"
    readme.write_text(re.sub(r"<!-- results:start -->.*<!-- results:end -->", lambda m: block, text, flags=re.S))
    print(f"rewrote the results block of {readme}")


if __name__ == "__main__":
    main()
