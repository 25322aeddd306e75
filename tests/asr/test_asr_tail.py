"""A tail (what the gate heard after the last word of an utterance that a lone window decoded) is decoded at the
first temperature only (transcribe.LongForm._checks).

The case, from the DEV file dev-ru-festvox of benchmarks/longform.py (greedy, fp32): the last window held the
utterance at file frames 18843-20164 alone; its last word ended at frame 19951, and the 2.1 s the gate heard after it
(the start of a voice-like bass note) came back as a window of its own. There Whisper base wrote "Сорай." (average
log-prob -1.50, no-speech probability 0.40: too unsure), then failed the checks at temperatures 0.2 to 1.0 as well,
and every one of those texts was dropped."""

from dataclasses import replace
from types import SimpleNamespace

import genlab.asr.transcribe as T
from genlab.asr.decoding import DecodingResult
from genlab.asr.transcribe import LongForm, TranscribeOptions, decode_with_fallback
from genlab.asr.windows import Todo, Window

LAST_UTTERANCE, LAST_WORD_END = (18843, 20164), 19951


def test_what_a_lone_window_leaves_after_its_last_word_is_a_tail():
    todo = Todo([], content_frames=20631)
    todo.put_back(Window([LAST_UTTERANCE]), LAST_WORD_END, alone=False)
    (tail,) = todo.plan(1)
    assert tail.pieces == [(LAST_WORD_END, LAST_UTTERANCE[1])] and tail.tail
    # Not a tail: the rest of a packed window, of a window cut at 30 s, or a part to decode again that ends early.
    todo.put_back(Window([(100, 1000), (1100, 2100)]), 1100, alone=True)
    todo.put_back(Window([(3000, 6000)], cut_from=9000), 5500, alone=False)
    todo.put_back(Window([(10000, 11000)]), 10500, alone=False, until=10800)
    planned = []
    while wins := todo.plan(8):
        planned += wins
    assert [w.pieces for w in planned] == [[(1100, 2100)], [(5500, 8500)], [(10500, 10800)]]
    assert not any(w.tail for w in planned)


def test_a_tail_is_decoded_at_the_first_temperature_only(monkeypatch):
    unsure = DecodingResult([1, 2, 3], " Сорай.", "ru", avg_logprob=-1.5, no_speech_prob=0.4, compression_ratio=0.55)
    temperatures = []

    def decode_at(model, features, tok, base, t, audio_kv=None, on_step=None):
        temperatures.append(t)
        return [replace(unsure, temperature=t)] * features.shape[0]

    monkeypatch.setattr(T, "_decode_at", decode_at)
    options = TranscribeOptions()
    features = SimpleNamespace(shape=(1,))
    tail = Window([(LAST_WORD_END, LAST_UTTERANCE[1])], tail=True)
    checks = LongForm._checks(SimpleNamespace(options=options), [tail])
    assert checks.temperature == (0.0,)
    [(result, accepted)] = decode_with_fallback(None, features, None, SimpleNamespace(), checks)
    assert temperatures == [0.0] and not accepted and result.text == " Сорай."
    # Any other window keeps the whole fallback.
    assert LongForm._checks(SimpleNamespace(options=options), [Window([LAST_UTTERANCE])]) is options
