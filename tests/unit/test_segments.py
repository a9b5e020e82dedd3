"""SMS segments at every boundary carriers bill on: 160/161 septets and 70/71 units for one segment,
153 septets and 67 units per part of a longer message, escape pairs, surrogate pairs and whole
graphemes never split across parts, and Twilio's smart-encoding replacements."""

from __future__ import annotations

import pytest

from cxone_relay.workflows.outbound_sms.segments import segment, smart_encode, utf16_units

CYRILLIC = "ж"  # not GSM: one UTF-16 unit
EMOJI = "\U0001f600"  # a surrogate pair: two units
THUMBS_UP_MEDIUM = "\U0001f44d\U0001f3fd"  # base + skin tone: one grapheme, four units
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by ZWJ: one grapheme, eight units


def part_sizes(text: str, smart: bool = False) -> list[int]:
    return [len(part) for part in segment(text, smart).parts]


# GSM-7: 160 in one segment, 153 per part -------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "parts"),
    [
        (1, [1]),
        (152, [152]),
        (153, [153]),
        (154, [154]),
        (159, [159]),
        (160, [160]),
        (161, [153, 8]),
        (306, [153, 153]),
        (307, [153, 153, 1]),
        (459, [153, 153, 153]),
        (460, [153, 153, 153, 1]),
    ],
)
def test_gsm_single_segment_holds_160_and_each_part_153(length, parts):
    result = segment("a" * length)

    assert (result.encoding, result.segments, result.characters) == ("GSM-7", len(parts), length)
    assert [len(part) for part in result.parts] == parts


@pytest.mark.parametrize("char", ["^", "{", "}", "\\", "[", "~", "]", "|", "€", "\x0c"])
def test_every_extension_character_counts_two_septets(char):
    assert (segment(char * 80).segments, segment(char * 80).characters) == (1, 160)
    assert (segment(char * 81).segments, segment(char * 81).characters) == (2, 162)
    # 76 pairs fill 152 septets of the first part; the 77th pair would need 154.
    assert part_sizes(char * 81) == [76, 5]


def test_an_escape_pair_at_a_part_boundary_moves_whole_to_the_next_part():
    # 152 septets, then a two-septet character: the part keeps 152 rather than split the pair.
    assert segment("a" * 152 + "€" + "a" * 10).parts[0] == tuple("a" * 152)
    assert part_sizes("a" * 152 + "€" + "a" * 10) == [152, 11]
    # 151 septets leave room for it: the part is full at 153.
    assert part_sizes("a" * 151 + "€" + "a" * 10) == [152, 10]
    # 153 septets are a full part; the pair starts the next one.
    assert part_sizes("a" * 153 + "€" + "a" * 10) == [153, 11]


def test_an_extension_character_that_tips_160_makes_two_parts():
    result = segment("a" * 159 + "€")
    assert (result.segments, result.characters) == (2, 161)
    assert [len(part) for part in result.parts] == [153, 7]
    assert result.parts[1][-1] == "€"
    assert segment("a" * 158 + "€").segments == 1  # exactly 160 septets


def test_gsm_basic_characters_outside_ascii_stay_gsm():
    text = "Ça coûte 5€? Über {x} ¡Sí! ΔΣΩ ñ å ø ß é"
    assert "û" in text  # û is not GSM: the whole text becomes UCS-2
    assert segment(text).encoding == "UCS-2"
    gsm = "Ça coute 5€? Über {x} ¡Sì! ΔΣΩ ñ å ø ß é\n\r"
    assert segment(gsm).encoding == "GSM-7"
    assert segment(gsm).characters == len(gsm) + 3  # €, { and } are pairs


# UCS-2: 70 in one segment, 67 per part -----------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "parts"),
    [
        (66, [66]),
        (67, [67]),
        (68, [68]),
        (70, [70]),
        (71, [67, 4]),
        (134, [67, 67]),
        (135, [67, 67, 1]),
        (201, [67, 67, 67]),
        (202, [67, 67, 67, 1]),
    ],
)
def test_ucs2_single_segment_holds_70_units_and_each_part_67(length, parts):
    result = segment(CYRILLIC * length)

    assert (result.encoding, result.segments, result.characters) == ("UCS-2", len(parts), length)
    assert [len(part) for part in result.parts] == parts


def test_one_character_outside_gsm_makes_the_whole_text_ucs2_where_gsm_characters_take_one_unit():
    assert segment("a" * 69 + CYRILLIC).encoding == "UCS-2"
    assert segment("a" * 69 + CYRILLIC).segments == 1
    assert part_sizes("a" * 70 + CYRILLIC) == [67, 4]
    # An extension character is one unit in UCS-2, not two.
    assert part_sizes("€" * 69 + CYRILLIC) == [70]
    assert part_sizes("€" * 70 + CYRILLIC) == [67, 4]


def test_emoji_count_two_units_and_are_never_split_at_a_part_boundary():
    assert utf16_units(EMOJI) == 2
    assert segment(CYRILLIC * 68 + EMOJI).segments == 1  # 70 units
    assert segment(CYRILLIC * 69 + EMOJI).segments == 2  # 71 units
    # 66 units, then a pair: the part keeps 66 rather than split the pair.
    assert part_sizes(CYRILLIC * 66 + EMOJI + CYRILLIC * 5) == [66, 6]
    assert segment(CYRILLIC * 66 + EMOJI + CYRILLIC * 5).parts[1][0] == EMOJI
    # 65 units leave room: the part is full at 67.
    assert part_sizes(CYRILLIC * 65 + EMOJI + CYRILLIC * 5) == [66, 5]
    assert part_sizes(EMOJI * 35) == [35]
    assert part_sizes(EMOJI * 36) == [33, 3]


def test_a_grapheme_of_several_code_points_stays_whole_in_one_part():
    assert segment(THUMBS_UP_MEDIUM).characters == 1  # one grapheme
    # 64 units + 4: 68 does not fit 67, so the whole grapheme moves.
    assert part_sizes(CYRILLIC * 64 + THUMBS_UP_MEDIUM + CYRILLIC * 10) == [64, 11]
    assert part_sizes(CYRILLIC * 63 + THUMBS_UP_MEDIUM + CYRILLIC * 10) == [64, 10]
    assert segment(CYRILLIC * 60 + FAMILY + CYRILLIC * 10).parts[1][0] == FAMILY
    assert part_sizes(CYRILLIC * 60 + FAMILY + CYRILLIC * 10) == [60, 11]


def test_characters_are_septets_for_gsm_and_graphemes_for_ucs2():
    assert segment("Hi {you}").characters == 10
    assert segment("Hi " + THUMBS_UP_MEDIUM + FAMILY).characters == 5
    assert segment("e\u0301").characters == 1  # e + combining acute: one grapheme
    assert segment("a\r\nb").characters == 4  # CR LF counts as two characters


# Smart encoding: Twilio's table, not our own ------------------------------------------------------


def test_smart_encoding_replaces_typographic_characters_by_twilios_table():
    text = "\u201cIt\u2019s done\u201d \u2014 nearly\u2026 \u00bd price\u200b\u00a0now"
    assert smart_encode(text) == '"It\'s done" - nearly... 1/2 price  now'
    result = segment(text, smart_encoding=True)
    assert (result.encoding, result.text) == ("GSM-7", smart_encode(text))
    assert result.characters == len(smart_encode(text))
    assert segment(text).encoding == "UCS-2"
    assert segment(text).text == text  # without smart encoding the text is sent as written


@pytest.mark.parametrize(
    ("char", "replacement"),
    [
        ("\u2026", "..."),  # ellipsis
        ("\u200b", ""),  # zero-width space
        ("\ufeff", ""),  # zero-width no-break space
        ("\u00a0", "  "),  # no-break space: two spaces in Twilio's table
        ("\u2009", "  "),  # thin space
        ("\u2013", "-"),
        ("\u2018", "'"),
        ("\u00ab", '"'),
        ("\uff11", "1"),  # full-width digit
    ],
)
def test_smart_encoding_entries(char, replacement):
    assert smart_encode(f"a{char}b") == f"a{replacement}b"


def test_smart_encoding_changes_the_count_both_ways():
    ellipses = "\u2026" * 54
    assert (segment(ellipses).encoding, segment(ellipses).segments) == ("UCS-2", 1)
    # 162 septets once each ellipsis is three full stops.
    assert (segment(ellipses, smart_encoding=True).segments, segment(ellipses, True).characters) == (2, 162)
    quotes = "\u201chi\u201d" * 20 + CYRILLIC
    assert segment(quotes, smart_encoding=True).encoding == "UCS-2"  # a character with no equivalent
    assert segment("a\u200b" * 90, smart_encoding=True).segments == 1  # 90 septets, the spaces gone
    assert segment("a\u200b" * 90).segments == 3  # 180 units in UCS-2


def test_characters_without_an_equivalent_are_left_alone():
    assert smart_encode("\u2122 ж \U0001f600") == "\u2122 ж \U0001f600"


def test_cr_lf_is_two_gsm_characters_each_a_septet():
    result = segment("a\r\nb")
    assert (result.encoding, result.characters, result.parts) == ("GSM-7", 4, (("a", "\r", "\n", "b"),))
    assert segment("\r\n" * 80).segments == 1  # 160 septets
    assert part_sizes("\r\n" * 80 + "a") == [153, 8]


def test_units_are_whole_numbers():
    assert [utf16_units(text) for text in ("", "a", CYRILLIC, EMOJI, FAMILY)] == [0, 1, 1, 2, 8]
    assert all(type(utf16_units(text)) is int for text in ("a", EMOJI))


def test_the_parts_hold_the_text_in_order():
    text = "".join(chr(ord("a") + n % 26) for n in range(320))
    result = segment(text)
    assert [len(part) for part in result.parts] == [153, 153, 14]
    assert "".join(grapheme for part in result.parts for grapheme in part) == text
    ucs2 = "".join(chr(0x430 + n % 32) for n in range(75))
    assert "".join(grapheme for part in segment(ucs2).parts for grapheme in part) == ucs2
