"""Text normalisation for English speech: what a reader says for "Dr. Lee paid $3.50 on 5 March 2024".

The acoustic model only knows phonemes and espeak only knows how to read words, so everything written in another
way is rewritten as the words a person would say (Sproat et al. 2001, "Normalization of non-standard words"):
numbers (cardinal, ordinal, decimal, negative, with thousands separators, ranges), years, dates (ISO, "5 March
2024", "March 5th, 2024", US "3/5/2024"), times, currency, percentages, units after a number, common abbreviations
and titles, and symbols. Rules are ordered (dates before ranges before plain numbers) and each is one regular
expression with a function, so a reader can find why a word came out as it did.

Characters nothing can say (emoji, control characters, other scripts for an English voice) are dropped;
:func:`normalize` keeps letters, digits turned to words, and the punctuation that shapes prosody (``, . ! ? ; : -``
and apostrophes). :func:`sentences` cuts a long text into sentences lazily, so a book streams through in bounded
memory.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                 "nine": "ninth", "twelve": "twelfth"}
MONTHS = ("January February March April May June July August September October November December").split()
MONTH_ABBREV = {m[:3].lower(): m for m in MONTHS} | {"sept": "September"}


def cardinal(n: int) -> str:
    """``1234`` -> "one thousand two hundred thirty-four" (American: no "and"); negatives say "minus"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return ONES[n // 100] + " hundred" + (" " + cardinal(n % 100) if n % 100 else "")
    if n >= 10**15:
        return " ".join(ONES[int(d)] for d in str(n))  # too large to read as a number: read the digits
    for value, name in SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return cardinal(head) + " " + name + (" " + cardinal(rest) if rest else "")
    raise AssertionError(n)


def ordinal(n: int) -> str:
    """``21`` -> "twenty-first"."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-" if "-" in words.split(" ")[-1] else " ")
    if last in ORDINAL_WORDS:
        last = ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """How a year is read: 1999 "nineteen ninety-nine", 1905 "nineteen oh five", 2000 "two thousand", 2008 "two
    thousand eight", 2024 "twenty twenty-four", 1100 "eleven hundred"."""
    if not 1000 <= n <= 9999 or (2000 <= n < 2010):
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return cardinal(hi) + " hundred"
    return cardinal(hi) + " " + (("oh " + ONES[lo]) if lo < 10 else cardinal(lo))


def digits(s: str) -> str:
    return " ".join(ONES[int(d)] for d in s if d.isdigit())


def _number(s: str) -> str:
    """A written number: "1,234" cardinal, "3.14" "three point one four", "-2" "minus two"."""
    s = s.replace(",", "")
    sign = "minus " if s.startswith("-") else ""
    s = s.lstrip("-+")
    whole, _, frac = s.partition(".")
    words = cardinal(int(whole)) if whole else "zero"
    if frac:
        words += " point " + digits(frac)
    return sign + words


# ---------------------------------------------------------------------------------------------------------------
# Rules: (pattern, replacement function), applied in order.

ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor", "st": "saint", "jr": "junior",
    "sr": "senior", "gen": "general", "capt": "captain", "lt": "lieutenant", "col": "colonel", "sgt": "sergeant",
    "rev": "reverend", "hon": "honorable", "mt": "mount", "ft": "fort", "vs": "versus", "etc": "et cetera",
    "approx": "approximately", "dept": "department", "est": "established", "inc": "incorporated",
    "ltd": "limited", "co": "company", "corp": "corporation", "no": "number", "vol": "volume", "fig": "figure",
    "ave": "avenue", "blvd": "boulevard", "rd": "road",
}
LATIN = {"e.g.": "for example", "i.e.": "that is", "a.m.": "a m", "p.m.": "p m", "u.s.": "U S", "u.k.": "U K"}
UNITS = {
    "km": ("kilometer", "kilometers"), "m": ("meter", "meters"), "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"), "kg": ("kilogram", "kilograms"), "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"), "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"), "ft": ("foot", "feet"), "mi": ("mile", "miles"), "mph": ("mile per hour",
    "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"), "kph": ("kilometer per hour",
    "kilometers per hour"), "l": ("liter", "liters"), "ml": ("milliliter", "milliliters"),
    "sec": ("second", "seconds"), "min": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"),
    "hz": ("hertz", "hertz"), "khz": ("kilohertz", "kilohertz"), "kb": ("kilobyte", "kilobytes"),
    "mb": ("megabyte", "megabytes"), "gb": ("gigabyte", "gigabytes"), "°c": ("degree Celsius", "degrees Celsius"),
    "°f": ("degree Fahrenheit", "degrees Fahrenheit"), "°": ("degree", "degrees"),
}
CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
            "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "sen", "sen")}
SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ", "%": " percent ",
           "×": " times ", "÷": " divided by ", "<": " less than ", ">": " greater than ", "/": " slash ",
           "½": " one half ", "¼": " one quarter ", "¾": " three quarters ", "°": " degrees "}
NUM = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"


def _plural(n_text: str, one: str, many: str) -> str:
    return one if n_text.replace(",", "") in ("1", "1.0", "-1") else many


def _money(m: re.Match) -> str:
    one, many, sub_one, sub_many = CURRENCY[m["cur"]]
    whole = m["whole"].replace(",", "")
    scale = {"k": " thousand", "m": " million", "bn": " billion", "b": " billion"}.get((m["scale"] or "").lower(), "")
    words = cardinal(int(whole)) + scale + " " + (one if whole == "1" and not scale else many)
    if m["cents"] and not scale:
        cents = int(m["cents"].ljust(2, "0")[:2])
        if cents:
            words += (" and " if int(whole) else "") + cardinal(cents) + " " + (sub_one if cents == 1 else sub_many)
            if not int(whole):
                words = cardinal(cents) + " " + (sub_one if cents == 1 else sub_many)
    elif m["cents"]:
        words = _number(whole + "." + m["cents"]) + scale + " " + many
    return words


def _date_iso(m: re.Match) -> str:
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0].replace("-", " ")
    return f"{MONTHS[mo - 1]} {ordinal(d)}, {year(y)}"


def _date_us(m: re.Match) -> str:  # 3/5/2024: American month/day/year
    mo, d, y = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return f"{cardinal(mo)} slash {cardinal(d)} slash {cardinal(y)}"
    if y < 100:
        y += 2000 if y < 30 else 1900
    return f"{MONTHS[mo - 1]} {ordinal(d)}, {year(y)}"


def _month(name: str) -> str:
    return MONTH_ABBREV.get(name.lower().rstrip(".")[:4], MONTH_ABBREV.get(name.lower()[:3], name))


def _date_dmy(m: re.Match) -> str:  # 5 March 2024 / 5th of March
    out = f"the {ordinal(int(m['d']))} of {_month(m['mon'])}"
    return out + (f", {year(int(m['y']))}" if m["y"] else "")


def _date_mdy(m: re.Match) -> str:  # March 5, 2024 / March 5th
    out = f"{_month(m['mon'])} {ordinal(int(m['d']))}"
    return out + (f", {year(int(m['y']))}" if m["y"] else "")


def _time(m: re.Match) -> str:
    h, mi = int(m["h"]), int(m["m"])
    if h > 24 or mi > 59:
        return f"{cardinal(h)} {cardinal(mi)}"
    words = cardinal(h) + (" o'clock" if mi == 0 and not m["ampm"] else "" if mi == 0 else
                           " oh " + ONES[mi] if mi < 10 else " " + cardinal(mi))
    if m["ampm"]:
        words += " " + " ".join(m["ampm"].lower().replace(".", ""))
    return words


def _unit(m: re.Match) -> str:
    one, many = UNITS[m["unit"].lower()]
    return _number(m["n"]) + " " + _plural(m["n"], one, many)


def _abbreviation(m: re.Match) -> str:
    word = m[1]
    full = ABBREVIATIONS[word.lower()]
    if word.lower() == "st" and m.string[m.end():m.end() + 2].strip()[:1].islower():
        full = "street"
    if word.lower() == "no" and not re.match(r"\s*\d", m.string[m.end():]):
        return m[0]  # "no." at a sentence end is the word no
    return full.capitalize() if word[0].isupper() else full


def _acronym(m: re.Match) -> str:
    return " ".join(m[0])


MONTH_RE = r"(?P<mon>(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?)"
RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), lambda m: m[0].replace("@", " at ").replace(".", " dot ")),
    (re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\.", re.I), _abbreviation),
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), _date_iso),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b"), _date_us),
    (re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?(?: of)? " + MONTH_RE + r"(?:,? (?P<y>\d{4}))?\b", re.I), _date_dmy),
    (re.compile(r"\b" + MONTH_RE + r" (?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?:,? (?P<y>\d{4})\b)?", re.I), _date_mdy),
    (re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s*(?P<ampm>[ap]\.?m(?:\.(?=\s+[a-z]))?))?(?![\d:])", re.I), _time),
    (re.compile(r"(?P<cur>[$£€¥])\s?(?P<whole>\d[\d,]*)(?:\.(?P<cents>\d+))?(?:\s?(?P<scale>bn|[kmb])\b)?", re.I),
     _money),
    (re.compile(r"\b\d{3}[-.]\d{3}[-.]\d{4}\b|\b\d{3}-\d{4}\b"),
     lambda m: ", ".join(digits(part) for part in re.split(r"[-.]", m[0]))),  # telephone numbers: digit by digit
    (re.compile(r"(" + NUM + r")\s?%"), lambda m: _number(m[1]) + " percent"),
    (re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I), lambda m: ordinal(int(m[1]))),
    (re.compile(r"(?<![\d,.])(1[1-9]\d\d|20\d\d)s\b"), lambda m: _plural_year(int(m[1]))),
    (re.compile(r"(?<![\d.])(?P<n>" + NUM + r")\s?(?P<unit>km/h|°[cf]|°|" +
                "|".join(sorted((u for u in UNITS if u[0] != "°" and "/" not in u), key=len, reverse=True)) +
                r")(?![\w])", re.I), _unit),
    (re.compile(r"\b(\d+)\s?(?:-|–|to)\s?(\d+)\b"), lambda m: f"{_number(m[1])} to {_number(m[2])}"),
    (re.compile(r"(?<![\d,.])(1[1-9]\d\d|20\d\d)(?!\d|[,.]\d)"), lambda m: year(int(m[1]))),
    (re.compile(r"(?<![\w.])" + NUM), lambda m: _number(m[0])),
    (re.compile(r"\b[B-DF-HJ-NP-TV-Z]{2,5}\b"), _acronym),  # vowel-less capitals: spelled (FBI, BBC, NHS)
]


def _plural_year(n: int) -> str:
    words = year(n)
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def normalize(text: str) -> str:
    """The words a reader says for ``text`` (English), with prosodic punctuation kept; "" if nothing speakable."""
    text = unicodedata.normalize("NFKC", text)
    text = (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
            .replace("\u2014", ", ").replace("\u2013", "-").replace("\u2026", "..."))
    for written, said in LATIN.items():
        text = re.sub(re.escape(written), f" {said} ", text, flags=re.I)
    for pattern, fn in RULES:
        text = pattern.sub(fn, text)
    for symbol, said in SYMBOLS.items():
        text = text.replace(symbol, said)
    return _keep_speakable(text)


def _keep_speakable(text: str) -> str:
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in ",.!?;:'-":
            out.append(ch)
        elif cat.startswith("L") and _latin(ch):
            out.append(ch)
        elif ch.isspace() or cat.startswith("P") or cat.startswith("Z"):
            out.append(" ")
        # anything else (symbols, emoji, control characters, other scripts) is dropped
    text = re.sub(r"\s+", " ", "".join(out))
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)
    text = re.sub(r"([,.!?;:])(?:\s*[,;:])+", r"\1", text)  # ", ," from removed pieces
    return text.strip(" ,;:-")


def _latin(ch: str) -> bool:
    try:
        return "LATIN" in unicodedata.name(ch)
    except ValueError:
        return False


BUFFER = 2000  # characters of text held before sentences are cut from them
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9\"'])")
_NO_BREAK = re.compile(r"\b(?:" + "|".join(ABBREVIATIONS) + r"|[A-Z])\.$", re.I)


def sentences(text: str | Iterable[str], max_words: int = 40) -> Iterator[str]:
    """Sentences of ``text`` (a string, or any iterable of pieces such as a file's lines), lazily: memory holds one
    paragraph at a time. A sentence longer than ``max_words`` is cut at clause punctuation, else every
    ``max_words`` words, so each piece the acoustic model sees is bounded."""
    pieces = [text] if isinstance(text, str) else text
    buffer = ""
    for piece in pieces:
        buffer += piece
        if "\n\n" not in buffer and len(buffer) < BUFFER:
            continue
        *done, buffer = re.split(r"\n\s*\n", buffer) if "\n\n" in buffer else ["", buffer]
        for paragraph in done:
            yield from _split(paragraph, max_words)
        if len(buffer) >= BUFFER:  # a long paragraph: cut at the last sentence end seen
            cut = max(buffer.rfind(". "), buffer.rfind("! "), buffer.rfind("? "))
            cut = cut + 1 if cut > 0 else len(buffer)
            yield from _split(buffer[:cut], max_words)
            buffer = buffer[cut:]
    yield from _split(buffer, max_words)


def _split(paragraph: str, max_words: int) -> Iterator[str]:
    parts = _SENTENCE_END.split(" ".join(paragraph.split()))
    merged: list[str] = []
    for p in parts:
        if merged and _NO_BREAK.search(merged[-1]):  # "Dr. Lee": not a sentence end
            merged[-1] += " " + p
        else:
            merged.append(p)
    for sentence in merged:
        yield from _bounded(sentence.strip(), max_words)


def _bounded(sentence: str, max_words: int) -> Iterator[str]:
    words = sentence.split()
    if not words:
        return
    if len(words) <= max_words:
        yield sentence
        return
    chunk: list[str] = []
    for w in words:
        chunk.append(w)
        if len(chunk) >= max_words or (len(chunk) >= max_words // 2 and w[-1] in ",;:"):
            yield " ".join(chunk)
            chunk = []
    if chunk:
        yield " ".join(chunk)
