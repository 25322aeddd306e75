"""Whisper's tokenizer: GPT-2 byte-level BPE plus special tokens that steer the decoder (Radford et al. 2022,
figure 1): ``<|startoftranscript|>``, a language token, a task token (``<|transcribe|>`` / ``<|translate|>``),
``<|notimestamps|>``, and 1,501 timestamp tokens ``<|0.00|>`` ... ``<|30.00|>`` in 20 ms steps.

The BPE itself comes from a ``tokenizer.json`` read by the ``tokenizers`` library; the special token ids are
found by name there and the timestamp ids follow ``<|notimestamps|>`` (English-only files stop before them).
"""

from __future__ import annotations

import functools
import os
import string
from dataclasses import dataclass, field

from ..errors import GenlabError

# English names of Whisper's language codes, in token order (openai-whisper's table), for display.
LANGUAGE_NAMES = dict(
    en="english", zh="chinese", de="german", es="spanish", ru="russian", ko="korean", fr="french",
    ja="japanese", pt="portuguese", tr="turkish", pl="polish", ca="catalan", nl="dutch", ar="arabic",
    sv="swedish", it="italian", id="indonesian", hi="hindi", fi="finnish", vi="vietnamese", he="hebrew",
    uk="ukrainian", el="greek", ms="malay", cs="czech", ro="romanian", da="danish", hu="hungarian",
    ta="tamil", no="norwegian", th="thai", ur="urdu", hr="croatian", bg="bulgarian", lt="lithuanian",
    la="latin", mi="maori", ml="malayalam", cy="welsh", sk="slovak", te="telugu", fa="persian", lv="latvian",
    bn="bengali", sr="serbian", az="azerbaijani", sl="slovenian", kn="kannada", et="estonian",
    mk="macedonian", br="breton", eu="basque", is_="icelandic", hy="armenian", ne="nepali", mn="mongolian",
    bs="bosnian", kk="kazakh", sq="albanian", sw="swahili", gl="galician", mr="marathi", pa="punjabi",
    si="sinhala", km="khmer", sn="shona", yo="yoruba", so="somali", af="afrikaans", oc="occitan",
    ka="georgian", be="belarusian", tg="tajik", sd="sindhi", gu="gujarati", am="amharic", yi="yiddish",
    lo="lao", uz="uzbek", fo="faroese", ht="haitian creole", ps="pashto", tk="turkmen", nn="nynorsk",
    mt="maltese", sa="sanskrit", lb="luxembourgish", my="myanmar", bo="tibetan", tl="tagalog",
    mg="malagasy", as_="assamese", tt="tatar", haw="hawaiian", ln="lingala", ha="hausa", ba="bashkir",
    jw="javanese", su="sundanese", yue="cantonese",
)
LANGUAGE_NAMES = {k.rstrip("_"): v for k, v in LANGUAGE_NAMES.items()}


@dataclass
class WhisperTokenizer:
    """Text <-> token ids, and the ids of every special token (``sot``, ``eot``, ``timestamp_begin``, ...)."""

    path: str
    language: str | None = None
    task: str | None = None
    multilingual: bool = True
    bpe: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.bpe is None:
            self.bpe = _load_bpe(self.path)
        ids = self.bpe.token_to_id

        def special(name: str, *alternatives: str) -> int:
            for n in (name, *alternatives):
                i = ids(n)
                if i is not None:
                    return i
            raise GenlabError(f"{self.path}: tokenizer has no {name} token; is this a Whisper tokenizer.json?")

        self.eot = special("<|endoftext|>")
        self.sot = special("<|startoftranscript|>")
        self.translate = special("<|translate|>")
        self.transcribe = special("<|transcribe|>")
        self.sot_lm = special("<|startoflm|>")
        self.sot_prev = special("<|startofprev|>")
        self.no_speech = special("<|nospeech|>", "<|nocaptions|>")
        self.no_timestamps = special("<|notimestamps|>")
        self.timestamp_begin = self.no_timestamps + 1  # <|0.00|>, whether or not the file lists timestamps
        # Language tokens sit between <|startoftranscript|> and <|translate|>.
        self.language_codes = [self.bpe.id_to_token(i)[2:-2] for i in range(self.sot + 1, self.translate)]
        self.language_tokens = list(range(self.sot + 1, self.translate))
        if self.language is not None:
            self.language = self.language.lower()
            if self.language not in self.language_codes:
                by_name = {v: k for k, v in LANGUAGE_NAMES.items()}
                if by_name.get(self.language) in self.language_codes:
                    self.language = by_name[self.language]
                else:
                    raise GenlabError(f"unknown language {self.language!r}: use a code such as en, de, fr, zh")

    def with_options(self, language: str | None = None, task: str | None = None) -> WhisperTokenizer:
        return WhisperTokenizer(self.path, language, task, self.multilingual, self.bpe)

    # -- special sequences -------------------------------------------------------------------------------------

    def language_token(self, code: str) -> int:
        return self.language_tokens[self.language_codes.index(code)]

    @property
    def sot_sequence(self) -> tuple[int, ...]:
        """``<|startoftranscript|> <|lang|> <|task|>``; English-only models take ``<|startoftranscript|>`` alone."""
        seq = [self.sot]
        if self.multilingual:
            if self.language is not None:
                seq.append(self.language_token(self.language))
            if self.task is not None:
                seq.append(self.transcribe if self.task == "transcribe" else self.translate)
        return tuple(seq)

    @property
    def sot_sequence_including_notimestamps(self) -> tuple[int, ...]:
        return (*self.sot_sequence, self.no_timestamps)

    @functools.cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens that are only symbols or speaker tags, suppressed by default (as openai-whisper does)."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        miscellaneous = set("♩♪♫♬♭♮♯")
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + list(miscellaneous):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in miscellaneous:
                    result.add(tokens[0])
        return tuple(sorted(result))

    # -- text ----------------------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return self.bpe.encode(text, add_special_tokens=False).ids

    def decode(self, tokens) -> str:
        """Text of the ordinary tokens (special and timestamp tokens dropped)."""
        return self.bpe.decode([int(t) for t in tokens if int(t) < self.eot], skip_special_tokens=False)

    def decode_with_timestamps(self, tokens) -> str:
        """Text with ``<|1.08|>`` markers where the timestamp tokens are."""
        out, run = [], []
        for t in (int(t) for t in tokens):
            if t >= self.timestamp_begin:
                out.append(self.bpe.decode(run, skip_special_tokens=False))
                run = []
                out.append(f"<|{(t - self.timestamp_begin) * 0.02:.2f}|>")
            elif t < self.eot:
                run.append(t)
        out.append(self.bpe.decode(run, skip_special_tokens=False))
        return "".join(out)

    def split_to_word_tokens(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Group tokens into words: at spaces and punctuation, or per character for languages written without
        spaces (zh, ja, th, lo, my, yue)."""
        if self.language in {"zh", "ja", "th", "lo", "my", "yue"}:
            return self._split_on_unicode(tokens)
        subwords, subword_tokens = self._split_on_unicode(tokens)
        words, word_tokens = [], []
        for sub, toks in zip(subwords, subword_tokens):
            special = toks[0] >= self.eot
            starts_word = sub.startswith(" ")
            punct = sub.strip() in string.punctuation
            if special or starts_word or punct or not words:
                words.append(sub)
                word_tokens.append(list(toks))
            else:
                words[-1] += sub
                word_tokens[-1].extend(toks)
        return words, word_tokens

    def _split_on_unicode(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        # A multi-byte character can span tokens: grow the run until it decodes without a replacement char.
        full = self.decode_with_timestamps(tokens)
        words, word_tokens, current = [], [], []
        pos = 0
        for t in tokens:
            current.append(t)
            text = self.decode_with_timestamps(current)
            if "\ufffd" not in text or full[pos + text.index("\ufffd")] == "\ufffd":
                words.append(text)
                word_tokens.append(current)
                current = []
                pos += len(text)
        return words, word_tokens


@functools.lru_cache(maxsize=8)
def _load_bpe(path: str):
    from tokenizers import Tokenizer

    if not os.path.exists(path):
        raise GenlabError(f"{path}: tokenizer.json not found")
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception on malformed files
        raise GenlabError(f"{path}: not a readable tokenizer.json ({str(e).splitlines()[0][:100]})") from None


def get_tokenizer(path: str | os.PathLike, multilingual: bool, language: str | None = None,
                  task: str | None = None) -> WhisperTokenizer:
    return WhisperTokenizer(os.fspath(path), language=language, task=task if multilingual else None,
                            multilingual=multilingual)
