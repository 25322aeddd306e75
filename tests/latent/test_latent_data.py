"""The held-out split of unseen combinations: every held-out caption's object and its tone or colour are each seen
in training, never together. Checked on the real emoji names (the ``emoji`` package)."""

from genlab.data.emoji import caption_table
from genlab.latent.data import TONES, colour_combo, held_out_combinations, tone_combo


def test_combination_parsing():
    assert tone_combo("waving hand medium-dark skin tone") == ("waving hand", "medium-dark")
    assert tone_combo("woman medium-light skin tone") == ("woman", "medium-light")
    assert tone_combo("kiss woman man light skin tone dark skin tone") is None
    assert tone_combo("light skin tone") is None
    assert colour_combo("large blue circle") == ("large _ circle", "blue")
    assert colour_combo("grinning face") is None and colour_combo("black and white") is None


def test_held_out_combinations_recombine_seen_words():
    captions = sorted(set(caption_table().values()))
    held = held_out_combinations(captions)
    train = [c for c in captions if c not in held]
    tones = [tone_combo(c) for c in held if tone_combo(c)]
    colours = [colour_combo(c) for c in held if colour_combo(c)]
    assert len(tones) >= 50 and len(colours) >= 3 and len(tones) + len(colours) == len(held)
    train_tones = [tone_combo(c) for c in train if tone_combo(c)]
    train_colours = [colour_combo(c) for c in train if colour_combo(c)]
    for obj, tone in tones:
        assert sum(o == obj for o, _ in train_tones) == len(TONES) - 1  # the object, in its other four tones
        assert any(t == tone and o != obj for o, t in train_tones)  # the tone, on other objects
    for obj, colour in colours:
        assert sum(o == obj for o, _ in train_colours) >= 2
        assert any(c == colour and o != obj for o, c in train_colours)
    assert held == held_out_combinations(list(reversed(captions)))  # a function of the captions, not their order
