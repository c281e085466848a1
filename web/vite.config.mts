// The dashboard builds into hub/web, which the API serves at `/` (no CDN: offline).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  build: {
    outDir: "../hub/web",
    emptyOutDir: true,
    sourcemap: false,
  },
});
