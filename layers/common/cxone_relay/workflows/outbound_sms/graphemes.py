"""Extended grapheme clusters as Twilio's segment calculator finds them: a port of npm
grapheme-splitter 1.0.4 (UAX #29, Unicode 10.0.0), which sms-segments-calculator uses.

Why not a newer Unicode: the calculator keeps each grapheme whole inside one part, so where it sees
a cluster boundary decides the part boundaries, and so the bill. Its Unicode 10 rules differ from
today's on emoji (an emoji modifier after a letter starts a cluster; ZWJ joins only the emoji of its
day) and on Indic conjuncts, so a current library would disagree with it. The break property table
below is the package's, exported and compared with it by tests/unit/test_segments_reference.py;
Hangul syllables (LV or LVT) follow from their code point and are computed.
"""

from __future__ import annotations

from bisect import bisect_right

# Grapheme_Cluster_Break values, numbered as in grapheme-splitter.
CR, LF, CONTROL, EXTEND, REGIONAL_INDICATOR, SPACING_MARK, L, V, T, LV, LVT, OTHER = range(12)
PREPEND, E_BASE, E_MODIFIER, ZWJ, GLUE_AFTER_ZWJ, E_BASE_GAZ = range(12, 18)

HANGUL_SYLLABLES = (0xAC00, 0xD7A3)
HANGUL_T_COUNT = 28  # a syllable with no trailing consonant (LV) every 28 code points

# "first-last:property" (hex code points) for every code point that is not OTHER, outside the Hangul
# syllables; a single code point is written once.
_RANGES_TEXT = """
0-9:2 A:1 B-C:2 D:0 E-1F:2 7F-9F:2 AD:2 300-36F:3 483-489:3 591-5BD:3 5BF:3 5C1-5C2:3 5C4-5C5:3
5C7:3 600-605:12 610-61A:3 61C:2 64B-65F:3 670:3 6D6-6DC:3 6DD:12 6DF-6E4:3 6E7-6E8:3 6EA-6ED:3
70F:12 711:3 730-74A:3 7A6-7B0:3 7EB-7F3:3 816-819:3 81B-823:3 825-827:3 829-82D:3 859-85B:3
8D4-8E1:3 8E2:12 8E3-902:3 903:5 93A:3 93B:5 93C:3 93E-940:5 941-948:3 949-94C:5 94D:3 94E-94F:5
951-957:3 962-963:3 981:3 982-983:5 9BC:3 9BE:3 9BF-9C0:5 9C1-9C4:3 9C7-9C8:5 9CB-9CC:5 9CD:3 9D7:3
9E2-9E3:3 A01-A02:3 A03:5 A3C:3 A3E-A40:5 A41-A42:3 A47-A48:3 A4B-A4D:3 A51:3 A70-A71:3 A75:3
A81-A82:3 A83:5 ABC:3 ABE-AC0:5 AC1-AC5:3 AC7-AC8:3 AC9:5 ACB-ACC:5 ACD:3 AE2-AE3:3 AFA-AFF:3 B01:3
B02-B03:5 B3C:3 B3E-B3F:3 B40:5 B41-B44:3 B47-B48:5 B4B-B4C:5 B4D:3 B56-B57:3 B62-B63:3 B82:3 BBE:3
BBF:5 BC0:3 BC1-BC2:5 BC6-BC8:5 BCA-BCC:5 BCD:3 BD7:3 C00:3 C01-C03:5 C3E-C40:3 C41-C44:5 C46-C48:3
C4A-C4D:3 C55-C56:3 C62-C63:3 C81:3 C82-C83:5 CBC:3 CBE:5 CBF:3 CC0-CC1:5 CC2:3 CC3-CC4:5 CC6:3
CC7-CC8:5 CCA-CCB:5 CCC-CCD:3 CD5-CD6:3 CE2-CE3:3 D00-D01:3 D02-D03:5 D3B-D3C:3 D3E:3 D3F-D40:5
D41-D44:3 D46-D48:5 D4A-D4C:5 D4D:3 D4E:12 D57:3 D62-D63:3 D82-D83:5 DCA:3 DCF:3 DD0-DD1:5
DD2-DD4:3 DD6:3 DD8-DDE:5 DDF:3 DF2-DF3:5 E31:3 E33:5 E34-E3A:3 E47-E4E:3 EB1:3 EB3:5 EB4-EB9:3
EBB-EBC:3 EC8-ECD:3 F18-F19:3 F35:3 F37:3 F39:3 F3E-F3F:5 F71-F7E:3 F7F:5 F80-F84:3 F86-F87:3
F8D-F97:3 F99-FBC:3 FC6:3 102D-1030:3 1031:5 1032-1037:3 1039-103A:3 103B-103C:5 103D-103E:3
1056-1057:5 1058-1059:3 105E-1060:3 1071-1074:3 1082:3 1084:5 1085-1086:3 108D:3 109D:3 1100-115F:6
1160-11A7:7 11A8-11FF:8 135D-135F:3 1712-1714:3 1732-1734:3 1752-1753:3 1772-1773:3 17B4-17B5:3
17B6:5 17B7-17BD:3 17BE-17C5:5 17C6:3 17C7-17C8:5 17C9-17D3:3 17DD:3 180B-180D:3 180E:2 1885-1886:3
18A9:3 1920-1922:3 1923-1926:5 1927-1928:3 1929-192B:5 1930-1931:5 1932:3 1933-1938:5 1939-193B:3
1A17-1A18:3 1A19-1A1A:5 1A1B:3 1A55:5 1A56:3 1A57:5 1A58-1A5E:3 1A60:3 1A62:3 1A65-1A6C:3
1A6D-1A72:5 1A73-1A7C:3 1A7F:3 1AB0-1ABE:3 1B00-1B03:3 1B04:5 1B34:3 1B35:5 1B36-1B3A:3 1B3B:5
1B3C:3 1B3D-1B41:5 1B42:3 1B43-1B44:5 1B6B-1B73:3 1B80-1B81:3 1B82:5 1BA1:5 1BA2-1BA5:3 1BA6-1BA7:5
1BA8-1BA9:3 1BAA:5 1BAB-1BAD:3 1BE6:3 1BE7:5 1BE8-1BE9:3 1BEA-1BEC:5 1BED:3 1BEE:5 1BEF-1BF1:3
1BF2-1BF3:5 1C24-1C2B:5 1C2C-1C33:3 1C34-1C35:5 1C36-1C37:3 1CD0-1CD2:3 1CD4-1CE0:3 1CE1:5
1CE2-1CE8:3 1CED:3 1CF2-1CF3:5 1CF4:3 1CF7:5 1CF8-1CF9:3 1DC0-1DF9:3 1DFB-1DFF:3 200B:2 200C:3
200D:15 200E-200F:2 2028-202E:2 2060-206F:2 20D0-20F0:3 261D:13 2640:16 2642:16 2695-2696:16
26F9:13 2708:16 270A-270D:13 2764:16 2CEF-2CF1:3 2D7F:3 2DE0-2DFF:3 302A-302F:3 3099-309A:3
A66F-A672:3 A674-A67D:3 A69E-A69F:3 A6F0-A6F1:3 A802:3 A806:3 A80B:3 A823-A824:5 A825-A826:3 A827:5
A880-A881:5 A8B4-A8C3:5 A8C4-A8C5:3 A8E0-A8F1:3 A926-A92D:3 A947-A951:3 A952-A953:5 A960-A97C:6
A980-A982:3 A983:5 A9B3:3 A9B4-A9B5:5 A9B6-A9B9:3 A9BA-A9BB:5 A9BC:3 A9BD-A9C0:5 A9E5:3 AA29-AA2E:3
AA2F-AA30:5 AA31-AA32:3 AA33-AA34:5 AA35-AA36:3 AA43:3 AA4C:3 AA4D:5 AA7C:3 AAB0:3 AAB2-AAB4:3
AAB7-AAB8:3 AABE-AABF:3 AAC1:3 AAEB:5 AAEC-AAED:3 AAEE-AAEF:5 AAF5:5 AAF6:3 ABE3-ABE4:5 ABE5:3
ABE6-ABE7:5 ABE8:3 ABE9-ABEA:5 ABEC:5 ABED:3 D7B0-D7C6:7 D7CB-D7FB:8 D800-DFFF:2 FB1E:3 FE00-FE0F:3
FE20-FE2F:3 FEFF:2 FF9E-FF9F:3 FFF0-FFFB:2 101FD:3 102E0:3 10376-1037A:3 10A01-10A03:3
10A05-10A06:3 10A0C-10A0F:3 10A38-10A3A:3 10A3F:3 10AE5-10AE6:3 11000:5 11001:3 11002:5
11038-11046:3 1107F-11081:3 11082:5 110B0-110B2:5 110B3-110B6:3 110B7-110B8:5 110B9-110BA:3
110BD:12 11100-11102:3 11127-1112B:3 1112C:5 1112D-11134:3 11173:3 11180-11181:3 11182:5
111B3-111B5:5 111B6-111BE:3 111BF-111C0:5 111C2-111C3:12 111CA-111CC:3 1122C-1122E:5 1122F-11231:3
11232-11233:5 11234:3 11235:5 11236-11237:3 1123E:3 112DF:3 112E0-112E2:5 112E3-112EA:3
11300-11301:3 11302-11303:5 1133C:3 1133E:3 1133F:5 11340:3 11341-11344:5 11347-11348:5
1134B-1134D:5 11357:3 11362-11363:5 11366-1136C:3 11370-11374:3 11435-11437:5 11438-1143F:3
11440-11441:5 11442-11444:3 11445:5 11446:3 114B0:3 114B1-114B2:5 114B3-114B8:3 114B9:5 114BA:3
114BB-114BC:5 114BD:3 114BE:5 114BF-114C0:3 114C1:5 114C2-114C3:3 115AF:3 115B0-115B1:5
115B2-115B5:3 115B8-115BB:5 115BC-115BD:3 115BE:5 115BF-115C0:3 115DC-115DD:3 11630-11632:5
11633-1163A:3 1163B-1163C:5 1163D:3 1163E:5 1163F-11640:3 116AB:3 116AC:5 116AD:3 116AE-116AF:5
116B0-116B5:3 116B6:5 116B7:3 1171D-1171F:3 11720-11721:5 11722-11725:3 11726:5 11727-1172B:3
11A01-11A06:3 11A07-11A08:5 11A09-11A0A:3 11A33-11A38:3 11A39:5 11A3A:12 11A3B-11A3E:3 11A47:3
11A51-11A56:3 11A57-11A58:5 11A59-11A5B:3 11A86-11A89:12 11A8A-11A96:3 11A97:5 11A98-11A99:3
11C2F:5 11C30-11C36:3 11C38-11C3D:3 11C3E:5 11C3F:3 11C92-11CA7:3 11CA9:5 11CAA-11CB0:3 11CB1:5
11CB2-11CB3:3 11CB4:5 11CB5-11CB6:3 11D31-11D36:3 11D3A:3 11D3C-11D3D:3 11D3F-11D45:3 11D46:12
11D47:3 16AF0-16AF4:3 16B30-16B36:3 16F51-16F7E:5 16F8F-16F92:3 1BC9D-1BC9E:3 1BCA0-1BCA3:2 1D165:3
1D166:5 1D167-1D169:3 1D16D:5 1D16E-1D172:3 1D173-1D17A:2 1D17B-1D182:3 1D185-1D18B:3 1D1AA-1D1AD:3
1D242-1D244:3 1DA00-1DA36:3 1DA3B-1DA6C:3 1DA75:3 1DA84:3 1DA9B-1DA9F:3 1DAA1-1DAAF:3 1E000-1E006:3
1E008-1E018:3 1E01B-1E021:3 1E023-1E024:3 1E026-1E02A:3 1E8D0-1E8D6:3 1E944-1E94A:3 1F1E6-1F1FF:4
1F308:16 1F33E:16 1F373:16 1F385:13 1F393:16 1F3A4:16 1F3A8:16 1F3C2-1F3C4:13 1F3C7:13
1F3CA-1F3CC:13 1F3EB:16 1F3ED:16 1F3FB-1F3FF:14 1F442-1F443:13 1F446-1F450:13 1F466-1F469:17
1F46E:13 1F470-1F478:13 1F47C:13 1F481-1F483:13 1F485-1F487:13 1F48B:16 1F4AA:13 1F4BB-1F4BC:16
1F527:16 1F52C:16 1F574-1F575:13 1F57A:13 1F590:13 1F595-1F596:13 1F5E8:16 1F645-1F647:13
1F64B-1F64F:13 1F680:16 1F692:16 1F6A3:13 1F6B4-1F6B6:13 1F6C0:13 1F6CC:13 1F918-1F91C:13
1F91E-1F91F:13 1F926:13 1F930-1F939:13 1F93D-1F93E:13 1F9D1-1F9DD:13 E0000-E001F:2 E0020-E007F:3
E0080-E00FF:2 E0100-E01EF:3 E01F0-E0FFF:2
"""


def _parse(text: str) -> tuple[tuple[int, int, int], ...]:
    ranges = []
    for item in text.split():
        span, value = item.split(":")
        first, _, last = span.partition("-")
        ranges.append((int(first, 16), int(last or first, 16), int(value)))
    return tuple(ranges)


RANGES = _parse(_RANGES_TEXT)
_STARTS = [first for first, _, _ in RANGES]


def break_property(code: int) -> int:
    """The Grapheme_Cluster_Break property of a code point, as grapheme-splitter has it."""
    if HANGUL_SYLLABLES[0] <= code <= HANGUL_SYLLABLES[1]:
        return LV if (code - HANGUL_SYLLABLES[0]) % HANGUL_T_COUNT == 0 else LVT
    index = bisect_right(_STARTS, code) - 1
    if index >= 0 and code <= RANGES[index][1]:
        return RANGES[index][2]
    return OTHER


def _last_index(values: list[int], value: int) -> int:
    for index in range(len(values) - 1, -1, -1):
        if values[index] == value:
            return index
    return -1


def _only(values: list[int], value: int) -> bool:
    return all(item == value for item in values)


def _breaks(start: int, mid: list[int], end: int) -> bool:
    """grapheme-splitter's shouldBreak, rule for rule (its lookaheads included)."""
    every = [start, *mid, end]
    previous = every[-2]
    modifier = _last_index(every, E_MODIFIER)
    # GB10 lookahead: an emoji modifier not preceded by an emoji base stands alone.
    if modifier > 1 and _only(every[1:modifier], EXTEND) and start not in (EXTEND, E_BASE, E_BASE_GAZ):
        return True
    regional = _last_index(every, REGIONAL_INDICATOR)
    # GB12/13 lookahead: regional indicators pair up from the start of the run.
    if (
        regional > 0
        and _only(every[1:regional], REGIONAL_INDICATOR)
        and previous
        not in (
            PREPEND,
            REGIONAL_INDICATOR,
        )
    ):
        return True
    if previous == CR and end == LF:  # GB3
        return False
    if previous in (CONTROL, CR, LF) or end in (CONTROL, CR, LF):  # GB4, GB5
        return True
    if previous == L and end in (L, V, LV, LVT):  # GB6
        return False
    if previous in (LV, V) and end in (V, T):  # GB7
        return False
    if previous in (LVT, T) and end == T:  # GB8
        return False
    if end in (EXTEND, ZWJ, SPACING_MARK):  # GB9, GB9a
        return False
    if previous == PREPEND:  # GB9b
        return False
    # GB10: (E_Base | E_Base_GAZ) Extend* x E_Modifier
    base = _last_index(every, EXTEND) - 1 if EXTEND in every else len(every) - 2
    if (
        base >= 0
        and every[base] in (E_BASE, E_BASE_GAZ)
        and _only(every[base + 1 : -1], EXTEND)
        and end == E_MODIFIER
    ):
        return False
    if previous == ZWJ and end in (GLUE_AFTER_ZWJ, E_BASE_GAZ):  # GB11
        return False
    if REGIONAL_INDICATOR in mid:  # GB12/13
        return True
    return not (previous == REGIONAL_INDICATOR and end == REGIONAL_INDICATOR)


def split_graphemes(text: str) -> list[str]:
    """The text's grapheme clusters, in order."""
    properties = [break_property(ord(char)) for char in text]
    clusters: list[str] = []
    start = 0
    while start < len(text):
        end = start + 1
        mid: list[int] = []
        while end < len(text) and not _breaks(properties[start], mid, properties[end]):
            mid.append(properties[end])
            end += 1
        clusters.append(text[start:end])
        start = end
    return clusters
