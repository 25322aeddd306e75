"""segments.passes_over_speech: whether a decoded window moves past a piece of speech that none of its words lie
in. The pieces are those of the window from 55.5 s of the DEV file dev-en-allison-r of benchmarks/longform.py
(beam 5, the packed window conditioned on the text before it). genlab's Whisper base gave that window no text and
moved on to its second piece (60.68 s): the first piece, 55.5-60.5 s, holds two utterances ("The conference is now
unmuted." and "Call waiting.") that its prompt held too, and they were lost."""

from genlab.asr.results import Segment, Word
from genlab.asr.segments import passes_over_speech
from genlab.asr.windows import Window

PIECES = [(5553, 6046), (6068, 7051), (7444, 7665), (8251, 8596), (8894, 9281), (10081, 10424), (10964, 11189)]
SEEK = 6068  # file frames: where decoding went on after the window
HEARD = [(" The", 56.74, 57.1), (" conference", 57.1, 57.6), (" is", 57.6, 57.8), (" now", 57.8, 58.0),
         (" unmuted.", 58.0, 58.65), (" Call", 59.38, 59.8), (" waiting.", 59.8, 60.26)]


def _segment(words) -> Segment:
    s = Segment(0, words[0][1], words[-1][2], "".join(w[0] for w in words), [1, 2], 0.0, -0.2, 1.1, 0.01)
    s.words = [Word(w, a, b, 0.99) for w, a, b in words]
    return s


def test_a_piece_without_words_that_decoding_moves_past_is_passed_over():
    assert passes_over_speech([], Window(PIECES), SEEK)


def test_pieces_that_hold_words_or_lie_ahead_are_not():
    win = Window(PIECES)
    assert not passes_over_speech([_segment(HEARD)], win, SEEK)
    assert not passes_over_speech([], win, PIECES[0][0] + 1)  # the next window starts inside the first piece
    # A word of no length inside a piece counts (segments.overlaps): the piece was heard.
    assert not passes_over_speech([_segment([(" Call", 59.5, 59.5)])], win, SEEK)
    # The words of a later piece do not make up for an earlier one.
    assert passes_over_speech([_segment([(" Simultaneous", 61.7, 62.54)])], win, 7051)
