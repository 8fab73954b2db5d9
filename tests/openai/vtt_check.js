// Parses WebVTT files with npm `webvtt-parser` (full HTML entity table, as the WebVTT
// spec decodes character references) and prints, as JSON, each file's parse errors and
// its cues with their text decoded back to plain text.
//
//   node vtt_check.js FILE...   →   [{"path", "errors": [...], "cues": [{"start", "end", "text"}]}]
"use strict";

const fs = require("fs");
const path = require("path");
const { WebVTTParser } = require("webvtt-parser");

const entities = JSON.parse(
  fs.readFileSync(
    path.join(path.dirname(require.resolve("webvtt-parser")), "html-entities.json"),
    "utf8",
  ),
);

/** The plain text of a parsed cue: text nodes joined, any markup flagged; timestamp
 * tags (word timings) are no text. */
function plainText(node) {
  return (node.children || [])
    .map((child) => {
      if (child.type === "text") return child.value;
      if (child.type === "timestamp") return "";
      return `<${child.name}>${plainText(child)}`;
    })
    .join("");
}

const results = process.argv.slice(2).map((file) => {
  const tree = new WebVTTParser(entities).parse(fs.readFileSync(file, "utf8"));
  return {
    path: file,
    errors: tree.errors,
    cues: tree.cues.map((cue) => ({
      start: cue.startTime,
      end: cue.endTime,
      text: plainText(cue.tree),
    })),
  };
});
process.stdout.write(JSON.stringify(results));
