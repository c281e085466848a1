// Builds the dashboard into hub/web (what the API serves) and stamps it with a digest of its
// sources, so a test can tell when the committed build is stale: `npm run web`.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..");

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

export function digest() {
  const hash = createHash("sha256");
  const sources = files(here)
    .map((path) => relative(root, path).split(sep).join("/"))
    .sort();
  for (const path of sources) {
    hash.update(path + "\0");
    hash.update(readFileSync(join(root, path)));
    hash.update("\0");
  }
  return hash.digest("hex");
}

await build({ configFile: join(here, "vite.config.mts"), logLevel: "warn" });
const stamp = { sources: digest(), note: "sha256 of web/ (paths and bytes); see web/build.mjs" };
writeFileSync(join(root, "hub", "web", "build.json"), JSON.stringify(stamp, null, 2) + "\n");
console.log(`dashboard built into hub/web (sources ${stamp.sources.slice(0, 12)})`);
