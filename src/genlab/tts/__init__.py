"""Speaking: text -> words (:mod:`.normalize`) -> phonemes (:mod:`.phonemes`, espeak-ng behind genlab[speech]) ->
log-mel frames (:class:`.model.FastSpeech`) -> waveform (:class:`.model.HiFiGAN`, :class:`.model.VocosVocoder`
or Griffin-Lim) -> a watermarked WAV (:mod:`genlab.provenance`); cloning conditions the acoustic model on a GE2E
d-vector (:mod:`.speaker`, :mod:`.voice`). Entry points: :func:`.api.load`, :func:`.api.speak`,
:func:`.api.synthesize`, ``genlab speak``.

Why a duration-based acoustic model and not a codec-token language model (VALL-E, Wang et al. 2023), in numbers:

- The alphabet a codec LM needs is not good enough yet: Whisper base's WER on speech through the bundled
  ``speech-codec`` is 0.68 at 6 kbps against 0.19 on the original (benchmarks/results/codec_eval.json), and a codec
  LM can only be as good as the codec under it; FastSpeech needs nothing but mel frames.
- Alignment: espeak reports where every phoneme starts, so the 2,000 training utterances (2.9 h, ~70 phonemes and
  ~444 frames each) come with exact durations and the duration-based model needs no aligner. A codec LM must learn
  the alignment itself through attention; VALL-E did so from 60,000 h (LibriLight), ~20,000x this corpus, and
  small-data autoregressive TTS is known for skipped and repeated words.
- Cost per sentence: FastSpeech is one parallel pass over ~444 frames; a codec LM at 50 frames/s with 8 codebooks
  (delay pattern) is ~260 sequential transformer steps for the same 5.2 s, each a full decoder step.
- Bounded output: the length regulator fixes the length from the predicted durations; an autoregressive model
  must learn when to stop (a failure mode the streaming long-text path would have to guard against).
The codec-token route stays open: the codec's tokens are an :class:`~genlab.data.alphabet.Alphabet`
and ``genlab.lm`` + ``genlab.sampling`` can model them.
"""
