#!/usr/bin/env node
// Compiles adapters/evm/contracts/*.sol with the pinned solcjs (node_modules/solc) and writes
// adapters/evm/artifacts/<Contract>.json ({abi, bytecode, deployedBytecode}, sorted keys, 2-space
// indent, trailing newline). The output depends only on the sources and the pinned compiler:
// stable source unit names, no metadata hash, no CBOR trailer.
//
//   node adapters/evm/build.mjs           compile and (re)write the artifacts
//   node adapters/evm/build.mjs --check   compile in memory; exit 1 naming stale artifacts

import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import fs from "node:fs";
import path from "node:path";

const SOLC_VERSION = "0.8.37";
const CONTRACTS = ["Gateway", "TokenBridge", "BridgedToken", "TestToken", "Inbox"];
const SOURCE_DIR = "adapters/evm/contracts";
const ARTIFACT_DIR = "adapters/evm/artifacts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
const require = createRequire(path.join(root, "package.json"));

function die(msg, code = 2) {
  process.stderr.write(`build.mjs: ${msg}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
const check = args.includes("--check");
for (const a of args) if (a !== "--check") die(`unknown argument ${a} (usage: build.mjs [--check])`);

let solc;
try {
  solc = require("solc");
} catch {
  die("node_modules/solc not found; run `npm install` in the repository root");
}
if (!solc.version().startsWith(`${SOLC_VERSION}+`)) {
  die(`solc ${SOLC_VERSION} required, found ${solc.version()}; run \`npm install\``);
}

// Sources: every .sol in SOURCE_DIR under its repository-relative name (sorted for stability).
const sources = {};
for (const f of fs.readdirSync(path.join(root, SOURCE_DIR)).filter((f) => f.endsWith(".sol")).sort()) {
  const unit = `${SOURCE_DIR}/${f}`;
  sources[unit] = { content: fs.readFileSync(path.join(root, unit), "utf8") };
}

// Imports outside SOURCE_DIR: npm packages (e.g. @openzeppelin/contracts/...) from node_modules.
function findImports(unit) {
  if (unit.startsWith("@")) {
    const parts = unit.split("/");
    const pkg = `${parts[0]}/${parts[1]}`;
    let pkgDir;
    try {
      pkgDir = path.dirname(require.resolve(`${pkg}/package.json`));
    } catch {
      return { error: `package ${pkg} not installed (run npm install)` };
    }
    const file = path.join(pkgDir, ...parts.slice(2));
    if (!file.startsWith(pkgDir + path.sep) || !fs.existsSync(file)) return { error: `${unit} not found` };
    return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `cannot resolve import ${unit}` };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Shanghai, not Cancun: some islands run an older EVM (Ganache 7 stops at Shanghai, and so
    // do many consortium chains); OpenZeppelin is pinned to 5.4, the last whose Strings (via
    // EIP712) needs no MCOPY.
    evmVersion: "shanghai",
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: Object.fromEntries(
      CONTRACTS.map((name) => [
        `${SOURCE_DIR}/${name}.sol`,
        { [name]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
      ]),
    ),
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const diagnostics = output.errors || [];
for (const d of diagnostics) process.stderr.write(d.formattedMessage || `${d.severity}: ${d.message}\n`);
if (diagnostics.some((d) => d.severity === "error")) die("compilation failed");

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  }
  return v;
}

const rendered = {};
for (const name of CONTRACTS) {
  const unit = `${SOURCE_DIR}/${name}.sol`;
  const c = output.contracts?.[unit]?.[name];
  if (!c) die(`contract ${name} not found in ${unit}`);
  const artifact = {
    abi: c.abi,
    bytecode: `0x${c.evm.bytecode.object}`,
    deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
  };
  if (/__\$[0-9a-f]{34}\$__/.test(artifact.bytecode)) die(`${name} needs library linking; not supported`);
  rendered[`${ARTIFACT_DIR}/${name}.json`] = JSON.stringify(sortKeys(artifact), null, 2) + "\n";
}

if (check) {
  const stale = Object.keys(rendered).filter((rel) => {
    const file = path.join(root, rel);
    return !fs.existsSync(file) || fs.readFileSync(file, "utf8") !== rendered[rel];
  });
  if (stale.length) {
    process.stderr.write(
      `build.mjs: stale contract artifacts (run \`node adapters/evm/build.mjs\`):\n${stale.map((s) => `  ${s}\n`).join("")}`,
    );
    process.exit(1);
  }
  process.stdout.write(`build.mjs: ${Object.keys(rendered).length} artifacts up to date\n`);
} else {
  fs.mkdirSync(path.join(root, ARTIFACT_DIR), { recursive: true });
  for (const [rel, text] of Object.entries(rendered)) {
    const file = path.join(root, rel);
    if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) continue;
    fs.writeFileSync(file, text);
    process.stdout.write(`build.mjs: wrote ${rel}\n`);
  }
}
