import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { JSON_MAX_NESTING, jsonNestingExceeds } from "../../src/http/json-nesting.js";

describe("jsonNestingExceeds", () => {
  it("counts arrays and objects alike, and allows exactly the limit", () => {
    assert.equal(jsonNestingExceeds("[[[1]]]", 3), false);
    assert.equal(jsonNestingExceeds("[[[1]]]", 2), true);
    assert.equal(jsonNestingExceeds('{"a":{"b":[{}]}}', 4), false);
    assert.equal(jsonNestingExceeds('{"a":{"b":[{}]}}', 3), true);
  });

  it("ignores brackets inside strings, escaped quotes included", () => {
    const text = JSON.stringify({ query: "[[[[[[{{{{{{", variables: { s: 'x\\"[[[[[["' } });
    assert.equal(jsonNestingExceeds(text, 2), false);
    assert.equal(jsonNestingExceeds(Buffer.from(text), 1), true);
  });

  it("measures depth, not the number of brackets: many siblings are flat", () => {
    assert.equal(jsonNestingExceeds(`[${"[],".repeat(100_000)}[]]`, 2), false);
  });

  it("refuses a megabyte of nested arrays at the default limit", () => {
    assert.equal(jsonNestingExceeds("[".repeat(1_000_000), JSON_MAX_NESTING), true);
    assert.equal(
      jsonNestingExceeds("[".repeat(JSON_MAX_NESTING) + "]".repeat(JSON_MAX_NESTING), JSON_MAX_NESTING),
      false,
    );
  });

  it("reads multi-byte UTF-8 without mistaking continuation bytes for brackets", () => {
    assert.equal(jsonNestingExceeds(JSON.stringify({ q: "é€😀[" }), 1), false);
  });
});
