"""With the gate on, a word timed where the gate heard no speech leaves the transcript (segments.keep_heard_words).
A word the alignment gives no frame of its own (start == end) is heard when that instant lies in speech: the rule
used to drop it, so that genlab wrote "il n a pas" for "il n'y a pas" three times on dev-fr-june-b (beam 5) where
faster-whisper, with the same weights, wrote "n'y".

The words below are what genlab's Whisper base wrote, with its word times, on seconds 120-160 of the DEV file
dev-fr-june-b of benchmarks/longform.py (beam 5, word timestamps), and the speech regions the gate heard there."""

from genlab.asr.results import Segment, Word
from genlab.asr.segments import keep_heard_words, overlaps

SPEECH = [(1.336, 4.264), (5.304, 10.696), (11.736, 14.216), (16.664, 20.04), (20.344, 23.08), (27.384, 30.632),
          (35.096, 38.248)]
WORDS = [(" Il", 27.1, 27.7), (" n", 27.7, 27.9), ("'y", 27.9, 27.9), (" a", 27.9, 27.96), (" qu", 27.96, 28.14),
         ("'un", 28.14, 28.22), (" seul", 28.22, 28.46), (" participant", 28.46, 28.96)]


class _Tokens:
    """The tokenizer's one use here: the kept text's tokens (one per character is enough to count them)."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]


def _segment(words) -> Segment:
    s = Segment(0, words[0][1], words[-1][2], "".join(w[0] for w in words), [1, 2, 3], 0.0, -0.2, 1.1, 0.01)
    s.words = [Word(w, a, b, 0.99) for w, a, b in words]
    return s


def test_a_word_of_no_length_inside_speech_is_heard():
    s = _segment(WORDS)
    keep_heard_words(s, SPEECH, _Tokens())
    assert s.text == " Il n'y a qu'un seul participant"
    assert [w.word for w in s.words] == [w for w, _, _ in WORDS]
    assert s.tokens == [1, 2, 3]  # untouched: nothing left the segment


def test_words_in_a_pause_leave_the_text_whatever_their_length():
    # The same words moved into the pause between the regions ending at 23.08 and starting at 27.384.
    moved = [(w, a - 3.0, b - 3.0) for w, a, b in WORDS[5:]]
    s = _segment(WORDS[:5] + moved)
    keep_heard_words(s, SPEECH, _Tokens())
    assert s.text == " Il n'y a qu"
    assert s.tokens == [ord(c) for c in " Il n'y a qu"]
    assert not overlaps(25.0, 25.0, SPEECH) and overlaps(27.9, 27.9, SPEECH) and overlaps(27.0, 27.5, SPEECH)
