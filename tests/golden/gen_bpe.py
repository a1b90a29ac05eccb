#!/usr/bin/python3
"""gen_bpe.py — expected CLIP token ids for tests/test_bpe.c (writes bpe_expected.txt).

No CLIP tokenizer package exists on this machine, so this is an independent, deliberately
slow reference written from the published algorithm: html.unescape twice, strip, white space
collapsed, lower case, the pre-split pattern run by the `regex` module (apt-get install
python3-regex), bytes mapped to unicode, then merges applied strictly in rank order. The
reference also runs ftfy.fix_text first; ftfy is not installed, so every text here is one ftfy
leaves unchanged (checked below: NFC, no curly quotes, ligatures, wide forms or controls).

The merges file is read from ../shared/clip at generation time only; it is not committed.
Run from the repository root:  /usr/bin/python3 tests/golden/gen_bpe.py
Output lines: the text as a JSON string, a tab, the ids (start and end tokens included, no
length limit).
"""
import gzip
import html
import json
import os
import unicodedata

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = os.path.join(HERE, "..", "..", "..", "shared", "clip", "bpe_simple_vocab_16e6.txt.gz")
OUT = os.path.join(HERE, "bpe_expected.txt")
N_MERGES = 49152 - 256 - 2


def byte_alphabet():
    """byte -> one printable character; the printable Latin-1 bytes first, in the order the
    base vocabulary lists them."""
    keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
    rest = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep}
    for i, b in enumerate(rest):
        table[b] = chr(256 + i)
    return table, keep + rest


def load_vocab():
    with gzip.open(VOCAB, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:1 + N_MERGES]]
    table, order = byte_alphabet()
    tokens = [table[b] for b in order]
    tokens += [t + "</w>" for t in tokens]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    ids = {}
    for i, t in enumerate(tokens):
        ids[t] = i
    ranks = {}
    for r, m in enumerate(merges):
        ranks[m] = r
    return table, ids, ranks


PATTERN = regex.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
                        r"[^\s\p{L}\p{N}]+", regex.IGNORECASE)


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    text = regex.sub(r"\s+", " ", text).strip()
    return text.lower()


def merge_word(symbols, ranks):
    """Repeatedly joins every occurrence (left to right) of the adjacent pair of lowest rank."""
    symbols = list(symbols)
    while len(symbols) > 1:
        candidates = [(ranks[p], p) for p in zip(symbols, symbols[1:]) if p in ranks]
        if not candidates:
            break
        _, (a, b) = min(candidates)
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                merged.append(a + b)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def encode(text, table, ids, ranks):
    out = [ids["<|startoftext|>"]]
    for piece in PATTERN.findall(clean(text)):
        if piece in ("<|startoftext|>", "<|endoftext|>"):
            out.append(ids[piece])
            continue
        chars = [table[b] for b in piece.encode("utf-8")]
        chars[-1] += "</w>"
        out.extend(ids[s] for s in merge_word(chars, ranks))
    out.append(ids["<|endoftext|>"])
    return out


def ftfy_neutral(text):
    """True when ftfy.fix_text would not change the outcome: NFC text without the characters
    it rewrites, and (as it unescapes HTML to a fixed point when there is no '<') no entity
    that hides such characters or needs more than html.unescape's two rounds."""
    if unicodedata.normalize("NFC", text) != text:
        return False
    if "<" not in text:
        full = text
        while html.unescape(full) != full:
            full = html.unescape(full)
        if full != html.unescape(html.unescape(text)):
            return False
        text = full
    for ch in text:
        c = ord(ch)
        if 0x2018 <= c <= 0x201F or 0xFB00 <= c <= 0xFB06 or c in (0x132, 0x133, 0xFEFF):
            return False
        if 0xFF01 <= c <= 0xFFEF or 0x80 <= c <= 0x9F or 0x206A <= c <= 0x206F:
            return False
        if (c < 0x20 and ch not in "\t\n\r\x0c") or c == 0x7F:
            return False
    return True


TEXTS = [
    # the README encodings and plain English
    "a photo of a cat", "a sketch of a face", "A PHOTO OF A DOG.", "", " ", "photo", "sketch",
    "a photo of a dog", "a pencil sketch of a shoe", "a blurry photo of a sneaker",
    "a black and white drawing of an ankle boot", "an upside-down picture of a bag",
    "The quick brown fox jumps over the lazy dog", "CLIP learns transferable visual models",
    "a high-contrast photo", "a pixelated image of a pullover", "line art", "a dark, grainy photo",
    "a bright photo of a trouser", "a silhouette of a coat", "a negative image of a dress",
    "photograph", "photographs", "photographic", "sketching", "sketches", "unbelievably",
    "antidisestablishmentarianism", "supercalifragilisticexpialidocious", "pneumonoultramicroscopic",
    "tokenization", "transformer", "domain adaptation", "diffusion models", "zero-shot",
    # case
    "Hello World", "HELLO WORLD", "hElLo WoRlD", "McDonald's", "iPhone", "NASA", "eBay",
    # punctuation
    "Hello, world!", "Wait... what?!", "a/b/c", "x+y=z", "(parentheses) [brackets] {braces}",
    "email@example.com", "https://example.com/path?q=1&r=2", "#hashtag @user", "$100.00", "50%",
    "semi;colon:colon", "dash - en -- em ---", "under_score", "back\\slash", "tilde~caret^",
    "quote \"double\" and 'single'", "!!!", "???", "...", "<html>", "a<|b|>c", "<>", "*stars*",
    "a,b,c,d", "end.", ".start", "mid.dle", "!@#$%^&*()", "`code`", "|pipe|",
    # digits
    "0", "7", "42", "2024", "3.14159", "1,000,000", "1st 2nd 3rd 4th", "v1.2.3", "100km/h",
    "COVID-19", "24/7", "007", "-5", "+1", "1e10", "0x1F",
    # apostrophes and contractions
    "it's", "don't", "they're", "we've", "I'm", "you'll", "he'd", "IT'S", "DON'T", "can't",
    "rock 'n' roll", "'quoted'", "o'clock", "the dogs' toys", "'s", "''", "y'all'd've",
    "'Twas", "it'ſ odd", "'ll'll", "James's", "'re'", "shouldn't've",
    # white space
    "  leading spaces", "trailing spaces   ", "multiple    spaces   here", "tab\tseparated",
    "new\nline", "mixed \t\n  white \r\n space", "\u00a0no-break\u00a0space", "em\u2003space",
    "\u2028line separator", "a \u3000b",
    # accented Latin (NFC)
    "café", "naïve", "résumé", "Ångström", "São Paulo", "Zürich", "Dvořák", "Łódź", "Ærøskøbing",
    "señor", "façade", "crème brûlée", "ÉCOLE", "ÇA", "Straße", "STRASSE", "İstanbul",
    # non-Latin scripts
    "東京", "日本語のテキスト", "猫の写真", "北京欢迎你", "한국어 텍스트", "Привет, мир!", "МОСКВА",
    "Ελληνικά", "ΟΔΟΣ", "ΣΟΦΟΣ ΑΝΘΡΩΠΟΣ", "σοφός", "Σ", "ΑΣ.", "مرحبا بالعالم", "שלום עולם",
    "हिन्दी भाषा", "தமிழ்", "ภาษาไทย", "ქართული", "Հայերեն", "አማርኛ", "१२३ ٤٥٦ ౭",
    "½ ¾ ²", "Ⅻ roman", "x²+y²",
    # emoji and symbols
    "😀", "I ❤️ NY", "🐱🐶", "👍🏽 thumbs", "🇫🇷 flag", "👨‍👩‍👧 family", "★☆", "→ arrow", "©2024 ™",
    "€5 £3 ¥7", "°C", "µm", "×÷", "∑∫√", "♪♫",
    # HTML entities (html.unescape twice)
    "Tom &amp; Jerry", "&lt;tag&gt;", "&quot;quoted&quot;", "it&#39;s", "&#x41;&#66;C", "&amp;amp;",
    "&eacute;t&eacute;", "&nbsp;space", "&copy; 2024", "&ampersand", "AT&T", "R&D;", "&#128512;",
    "&#0;", "&#x110000;", "&#150;", "&notit;", "&hellip;", "&#1;x",
    # special tokens written in the text
    "<|startoftext|>", "a <|endoftext|> b", "x!<|endoftext|>", "<|ENDOFTEXT|>",
    # long text (more than 77 tokens)
    "a photo of a cat " * 20,
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
    "ullamco laboris nisi ut aliquip ex ea commodo consequat.",
]


def main():
    table, ids, ranks = load_vocab()
    assert len(ids) == 49408, len(ids)
    # the encodings listed in ../shared/clip/README.md
    assert encode("a photo of a cat", table, ids, ranks) == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert encode("a sketch of a face", table, ids, ranks) == [49406, 320, 5269, 539, 320, 1710, 49407]
    assert encode("A PHOTO OF A DOG.", table, ids, ranks) == [49406, 320, 1125, 539, 320, 1929, 269, 49407]
    seen = set()
    with open(OUT, "w", encoding="utf-8") as f:
        for text in TEXTS:
            if text in seen:
                continue
            seen.add(text)
            assert ftfy_neutral(text), repr(text)
            row = encode(text, table, ids, ranks)
            f.write(json.dumps(text, ensure_ascii=True) + "\t" + " ".join(map(str, row)) + "\n")
    print(f"wrote {OUT} ({len(seen)} texts)")


if __name__ == "__main__":
    main()
