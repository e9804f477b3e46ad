// What the bundle uses for @apollo/utils.createhash: node:crypto's createHash. The package picks
// node:crypto through `module.require`, which a bundle does not have, and would fall back to sha.js,
// SHA-256 in JavaScript, for every query Apollo hashes (scripts/bundle.mjs).
"use strict";
exports.createHash = (kind) => require("node:crypto").createHash(kind);
