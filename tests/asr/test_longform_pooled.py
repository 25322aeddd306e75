"""benchmarks/longform_pooled.py: each utterance's share of a file's word errors adds up to the file's edit distance,
charged where the errors are."""

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
pooled = pytest.importorskip("longform_pooled")


def test_errors_are_charged_to_their_utterances():
    ref = "a b c d e f".split()
    owner = [0, 0, 0, 1, 1, 1]
    # "c" dropped (utterance 0), "e" replaced and "x" inserted after "f" (utterance 1)
    assert pooled.charges(ref, "a b d z f x".split(), owner, 2).tolist() == [1, 2]
    assert pooled.charges(ref, ref, owner, 2).tolist() == [0, 0]
    assert pooled.charges(ref, ["y", *ref], owner, 2).tolist() == [1, 0]  # an insertion at the start


def test_charges_add_up_to_the_edit_distance():
    from genlab.eval.text import edit_distance

    rng = random.Random(0)
    for _ in range(50):
        ref = [rng.choice("abcd") for _ in range(rng.randint(1, 12))]
        hyp = [rng.choice("abcde") for _ in range(rng.randint(0, 12))]
        owner = sorted(rng.randrange(3) for _ in ref)
        assert pooled.charges(ref, hyp, owner, 3).sum() == edit_distance(ref, hyp)
