"""Text normalisation: numbers, years, dates, times, money, units, abbreviations, symbols; sentence splitting that
streams."""

import pytest

from genlab.tts.normalize import cardinal, normalize, ordinal, sentences, year


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (42, "forty-two"), (100, "one hundred"),
    (101, "one hundred one"), (999, "nine hundred ninety-nine"), (1000, "one thousand"),
    (1234, "one thousand two hundred thirty-four"), (1000001, "one million one"),
    (2_000_000_000, "two billion"), (-5, "minus five"),
])
def test_cardinal(n, words):
    assert cardinal(n) == words


@pytest.mark.parametrize("n, words", [(1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth"),
                                      (12, "twelfth"), (20, "twentieth"), (21, "twenty-first"),
                                      (100, "one hundredth"), (103, "one hundred third")])
def test_ordinal(n, words):
    assert ordinal(n) == words


@pytest.mark.parametrize("n, words", [(1999, "nineteen ninety-nine"), (1905, "nineteen oh five"),
                                      (2000, "two thousand"), (2008, "two thousand eight"),
                                      (2024, "twenty twenty-four"), (1100, "eleven hundred")])
def test_year(n, words):
    assert year(n) == words


@pytest.mark.parametrize("text, said", [
    ("Dr. Lee paid $3.50 on 5 March 2024.",
     "Doctor Lee paid three dollars and fifty cents on the fifth of March, twenty twenty-four."),
    ("In 1999, 1,234 people ran 5 km at 3:30 pm.",
     "In nineteen ninety-nine, one thousand two hundred thirty-four people ran five kilometers at three thirty p m."),
    ("The 21st century began on 2001-01-01.", "The twenty-first century began on January first, two thousand one."),
    ("It costs $1 or 99 cents.", "It costs one dollar or ninety-nine cents."),
    ("About 45% of £2.5m.", "About forty-five percent of two point five million pounds."),
    ("Meet me on March 5th, 2024 at 10:05 a.m. on Main St. near St. Mary.",
     "Meet me on March fifth, twenty twenty-four at ten oh five a m on Main Street near Saint Mary."),
    ("Pages 10-20 of Vol. 3, e.g. the BBC.", "Pages ten to twenty of Volume three, for example the B B C."),
    ("Temperature -3.5°C, speed 60 mph, weight 1 kg.",
     "Temperature minus three point five degrees Celsius, speed sixty miles per hour, weight one kilogram."),
    ("Call 555-1234 or write to me@example.com", "Call five five five, one two three four or write to me at "
     "example dot com"),
    ("He was born in the 1980s.", "He was born in the nineteen eighties."),
    ("No. 5 is here. Say no.", "Number five is here. Say no."),
    ("3/5/2024 and 12/31/99", "March fifth, twenty twenty-four and December thirty-first, nineteen ninety-nine"),
    ("2 apples & 3 pears + 1 = 6", "two apples and three pears plus one equals six"),
    ("$0.05", "five cents"),
    ("pi is 3.14159", "pi is three point one four one five nine"),
])
def test_normalize(text, said):
    assert normalize(text) == said


def test_unknown_characters_are_dropped_and_nothing_left_is_empty():
    assert normalize("Hello 😀 world ☃ 你好!") == "Hello world!"
    assert normalize("😀 ☃ 你好 \x00\x07") == ""
    assert normalize("Café naïve") == "Café naïve"  # Latin letters with accents stay


def test_sentences_split_and_bound():
    text = "Dr. Lee went home. He said hi! Then? New one.\n\nAnother paragraph here."
    assert list(sentences(text)) == ["Dr. Lee went home.", "He said hi!", "Then?", "New one.",
                                     "Another paragraph here."]
    long = " ".join(["word"] * 95) + ", " + " ".join(["more"] * 10)
    pieces = list(sentences(long, max_words=40))
    assert all(len(p.split()) <= 40 for p in pieces)
    assert " ".join(pieces).split() == long.split()


def test_sentences_stream_from_an_iterable():
    """A 10,000-word text given as lines yields its first sentence before the rest is read."""
    read = []

    def lines():
        for i in range(2000):
            read.append(i)
            yield f"Sentence number {i} has five words. "
            if i % 50 == 49:
                yield "\n\n"

    stream = sentences(lines())
    first = next(stream)
    assert first == "Sentence number 0 has five words." and len(read) < 100
    assert sum(1 for _ in stream) == 1999
