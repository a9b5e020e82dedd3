"""How many SMS segments a text takes, counted as carriers bill it: as Twilio's segment calculator
(npm sms-segments-calculator 1.3.0) counts it, rule for rule.

- GSM-7 when every character is in the GSM 03.38 basic table (one septet) or its extension table
  (two: escape + character: ^ { } \\ [ ~ ] | euro and form feed); otherwise UCS-2, where a character
  costs its UTF-16 code units (an emoji outside the BMP is a surrogate pair, two units).
- A segment holds 140 octets: 160 septets or 70 units. A longer message is split into parts that
  each give 6 octets to the concatenation header, leaving 153 septets or 67 units per part.
- A character is never split across parts: an escape pair, a surrogate pair, or a whole grapheme
  (an emoji with its skin tone, a family joined by ZWJ) moves to the next part when it does not fit.
  The calculator keeps graphemes whole, so that is what is counted here (graphemes.py).
- Smart encoding first replaces each character found in Twilio's table (curly quotes, dashes, the
  ellipsis, Unicode spaces, zero-width characters, ...) by its GSM equivalent (gsm.py).

The seed design's 160/70 arithmetic forgot the header: 161 GSM characters are 2 parts (153 + 8),
not 1.006 of 160; 306 are 2 parts, 307 are 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cxone_relay.workflows.outbound_sms.graphemes import split_graphemes
from cxone_relay.workflows.outbound_sms.gsm import GSM_BASIC, GSM_EXTENSION, SMART_ENCODING

Encoding = Literal["GSM-7", "UCS-2"]
GSM_7: Encoding = "GSM-7"
UCS_2: Encoding = "UCS-2"

SEGMENT_BITS = 140 * 8  # 1120: 160 septets or 70 UTF-16 units
HEADER_BITS = 6 * 8  # the concatenation header of every part of a multi-part message
SEPTET_BITS = 7
UNIT_BITS = 16


def smart_encode(text: str) -> str:
    """The text with Twilio's smart-encoding replacements made, character by character."""
    return "".join(SMART_ENCODING.get(char, char) for char in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _is_gsm(grapheme: str) -> bool:
    return grapheme in GSM_BASIC or grapheme in GSM_EXTENSION


def _bits(grapheme: str, encoding: Encoding) -> int:
    if encoding == GSM_7:
        return SEPTET_BITS * (2 if grapheme in GSM_EXTENSION else 1)
    # In UCS-2 a GSM character is one unit like any other BMP character.
    return UNIT_BITS * utf16_units(grapheme)


@dataclass
class _Part:
    header: bool
    graphemes: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    @property
    def free_bits(self) -> int:
        return SEGMENT_BITS - (HEADER_BITS if self.header else 0) - sum(self.sizes)

    def add(self, grapheme: str, size: int) -> None:
        self.graphemes.append(grapheme)
        self.sizes.append(size)

    def add_header(self) -> list[tuple[str, int]]:
        """Make room for the header: what no longer fits moves, last first, to the next part."""
        self.header = True
        moved: list[tuple[str, int]] = []
        while self.free_bits < 0:
            moved.insert(0, (self.graphemes.pop(), self.sizes.pop()))
        return moved


@dataclass(frozen=True)
class Segmentation:
    """How a text goes out. `text` is what is sent (after smart encoding, when asked for);
    `characters` is what the calculator shows: septets for GSM-7 (an extension character counts
    two), graphemes for UCS-2; `parts` are each segment's graphemes."""

    text: str
    encoding: Encoding
    segments: int
    characters: int
    parts: tuple[tuple[str, ...], ...]


def segment(text: str, smart_encoding: bool = False) -> Segmentation:
    if smart_encoding:
        text = smart_encode(text)
    # The calculator splits a CR LF cluster into its two characters (each a GSM character).
    graphemes = [piece for cluster in split_graphemes(text) for piece in _split_crlf(cluster)]
    encoding = GSM_7 if all(_is_gsm(grapheme) for grapheme in graphemes) else UCS_2
    parts = [_Part(header=False)]
    for grapheme in graphemes:
        size = _bits(grapheme, encoding)
        if parts[-1].free_bits < size:
            previous = parts[-1]
            parts.append(_Part(header=True))
            if not previous.header:  # only the first part: every later one starts with its header
                for moved, moved_size in previous.add_header():
                    parts[-1].add(moved, moved_size)
        parts[-1].add(grapheme, size)
    characters = (
        len(graphemes)
        if encoding == UCS_2
        else sum(2 if grapheme in GSM_EXTENSION else 1 for grapheme in graphemes)
    )
    return Segmentation(
        text=text,
        encoding=encoding,
        segments=len(parts),
        characters=characters,
        parts=tuple(tuple(part.graphemes) for part in parts),
    )


def _split_crlf(cluster: str) -> list[str]:
    return ["\r", "\n"] if cluster == "\r\n" else [cluster]
