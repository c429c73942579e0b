// Compiles one solc standard-JSON input (read from stdin) with the solc-js of node_modules
// and writes {"version", "output", "imports"} to stdout; "imports" holds the text of every
// file the import callback read, so the caller hashes exactly what was compiled.
// Imports resolve offline: "@openzeppelin/..." from node_modules, "contracts/..." from the
// repository; nothing else, so no build picks up a file from elsewhere.
// scripts/compile_contracts.py drives it.
"use strict";

const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const solc = require(path.join(ROOT, "node_modules", "solc"));

// source unit name prefix -> directory it is read from
const ROOTS = [
  ["@openzeppelin/", path.join(ROOT, "node_modules", "@openzeppelin")],
  ["contracts/", path.join(ROOT, "contracts")],
];

const imports = {};

function findImports(name) {
  for (const [prefix, dir] of ROOTS) {
    if (!name.startsWith(prefix)) continue;
    const file = path.resolve(dir, name.slice(prefix.length));
    // a "../" in an import must not reach outside the directory it names
    if (!file.startsWith(dir + path.sep)) break;
    try {
      imports[name] = fs.readFileSync(file, "utf8");
      return { contents: imports[name] };
    } catch (err) {
      return { error: `${name}: ${err.message}` };
    }
  }
  return { error: `${name}: only @openzeppelin/ and contracts/ imports resolve` };
}

const input = fs.readFileSync(0, "utf8");
const output = JSON.parse(solc.compile(input, { import: findImports }));
process.stdout.write(JSON.stringify({ version: solc.version(), output: output, imports: imports }));
