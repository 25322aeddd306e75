"""The gate's last guard against words over non-speech: a segment the model itself doubts (openai-whisper's
anomaly test) or one without a letter or digit leaves the transcript. The words below are what genlab's Whisper
base wrote, with its word times and probabilities, on the DEV files of benchmarks/longform.py (gate on, word
timestamps, beam 1): the invented ones over a guitar chord and a sung synth note, and the shortest segments of real
speech on the same files, which must stay. (Excerpts of those files do not reproduce the invented words: they
appear only with the whole file's windows before them, which takes minutes to decode on CPU.)"""

import pytest

from genlab.asr.results import Segment, Word
from genlab.asr.segments import anomalous, says_nothing, word_anomaly
from genlab.asr.transcribe import TranscribeOptions

PUNCTUATION = TranscribeOptions().prepend_punctuations + TranscribeOptions().append_punctuations


def _segment(*words: tuple[str, float, float, float]) -> Segment:
    s = Segment(0, words[0][1], words[-1][2], "".join(w[0] for w in words), [], 0.0, -0.3, 1.2, 0.2)
    s.words = [Word(w, a, b, p) for w, a, b, p in words]
    return s


INVENTED = {
    "dev-it-menardi, over guit_em9": _segment((" Poi", 181.76, 182.54, 0.094)),
    "dev-ru-festvox, over bass_voxy_c": _segment((" Сорай.", 199.52, 201.10, 0.009)),
}
HEARD = {
    "dev-en-allison 'To extension.'": _segment((" To", 0.60, 1.48, 0.476), (" extension.", 1.48, 2.10, 0.679)),
    "dev-en-allison 'Is unavailable.'": _segment((" Is", 112.12, 112.96, 0.373), (" unavailable.", 112.96, 113.62,
                                                                                    0.989)),
    "dev-fr-june 'NBS'": _segment((" NBS", 12.49, 13.37, 0.521)),
    "dev-it-menardi 'Lo ginerrato.'": _segment((" Lo", 135.0, 135.24, 0.506), (" ginerrato.", 135.24, 135.98, 0.303)),
    "dev-it-menardi 'Prego riprovare.'": _segment((" Prego", 130.0, 130.28, 0.965), (" riprovare.", 130.28, 130.86,
                                                                                      0.901)),
}


@pytest.mark.parametrize("where", sorted(INVENTED))
def test_a_doubted_word_over_a_sound_is_anomalous(where):
    assert anomalous(INVENTED[where], PUNCTUATION)


@pytest.mark.parametrize("where", sorted(HEARD))
def test_short_segments_of_real_speech_are_not(where):
    assert not anomalous(HEARD[where], PUNCTUATION)


def test_the_score_counts_doubt_and_implausible_spans():
    assert word_anomaly(Word(" a", 0.0, 0.5, 0.14)) == 1.0
    assert word_anomaly(Word(" a", 0.0, 0.5, 0.15)) == 0.0
    assert word_anomaly(Word(" a", 0.0, 0.033, 0.9)) == pytest.approx(1.5)  # 0.1 s short of 0.133 s
    assert word_anomaly(Word(" a", 0.0, 3.0, 0.9)) == pytest.approx(1.0)  # 1 s over 2 s
    # Punctuation marks do not count as words; a segment without word times is never anomalous.
    assert not anomalous(_segment((" Yes", 0.0, 0.4, 0.9), (".", 0.4, 0.41, 0.01)), PUNCTUATION)
    assert not anomalous(Segment(0, 0.0, 1.0, " Poi", [], 0.0, -0.3, 1.0, 0.2), PUNCTUATION)


def test_a_segment_without_a_letter_or_digit_says_nothing():
    # dev-en-allison, beam 5, with 0.4 s of pause before each packed utterance: " ." over the glass hum at 137.5 s.
    assert says_nothing(_segment((" .", 137.46, 138.51, 0.6)), PUNCTUATION)
    assert says_nothing(_segment((" ...", 122.08, 122.2, 0.6)), PUNCTUATION)
    assert not says_nothing(_segment((" 9", 187.6, 187.9, 0.8)), PUNCTUATION)
    assert not says_nothing(_segment((" Сарай", 189.5, 190.0, 0.8)), PUNCTUATION)
