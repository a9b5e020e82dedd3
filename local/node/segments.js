// The reference for the relay's SMS segment counter: Twilio's calculator (npm
// sms-segments-calculator, pinned in package.json). Reads one JSON request on stdin:
//   {"texts": [[text, smartEncoding], ...]}  -> [{encoding, segments, characters, parts}, ...]
//   {"tables": true}                        -> {gsm, smart, graphemeBreak}
// `parts` lists each segment's characters (graphemes), user data headers left out.
'use strict';
const fs = require('fs');
const { SegmentedMessage } = require('sms-segments-calculator');
const UnicodeToGsm = require('sms-segments-calculator/dist/libs/UnicodeToGSM').default;
const SmartEncodingMap = require('sms-segments-calculator/dist/libs/SmartEncodingMap').default;

function segment([text, smart]) {
  const message = new SegmentedMessage(text, 'auto', smart);
  return {
    encoding: message.encodingName,
    segments: message.segmentsCount,
    characters: message.numberOfCharacters,
    // Array.from: a Segment's own map/filter would build Segments, which start with headers.
    parts: message.segments.map((part) => Array.from(part).filter((c) => !c.isUserDataHeader).map((c) => c.raw)),
  };
}

// grapheme-splitter keeps its break property table private: evaluate that one function.
function graphemeBreakRanges() {
  const source = fs.readFileSync(require.resolve('grapheme-splitter'), 'utf8');
  const constants = source.match(/var CR = 0,[\s\S]*?;/)[0];
  const start = source.indexOf('function getGraphemeBreakProperty(code)');
  const end = source.indexOf('}', source.indexOf('return Other;', start)) + 1;
  const property = new Function(`${constants}\n${source.slice(start, end)}\nreturn getGraphemeBreakProperty;`)();
  const ranges = [];
  for (let code = 0; code <= 0x10ffff; code += 1) {
    const value = property(code);
    const last = ranges[ranges.length - 1];
    if (last && last[2] === value && last[1] === code - 1) last[1] = code;
    else ranges.push([code, code, value]);
  }
  return ranges;
}

const request = JSON.parse(fs.readFileSync(0, 'utf8'));
const answer = request.tables
  ? { gsm: UnicodeToGsm, smart: SmartEncodingMap, graphemeBreak: graphemeBreakRanges() }
  : request.texts.map(segment);
process.stdout.write(JSON.stringify(answer));
