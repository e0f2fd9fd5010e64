// Debian's Chromium driven by playwright-core (no browser download: the
// package only drives an executable that is already installed), and a tiny
// static server that hosts the chat page on another origin.

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";

import { chromium } from "playwright-core";

import { REPO } from "./stack.mjs";

/** CHROMIUM_PATH, else the first `chromium` (or `chromium-browser`) on PATH. */
export function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const dir of (process.env.PATH || "").split(path.delimiter)) {
    for (const name of ["chromium", "chromium-browser"]) {
      const candidate = path.join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
  }
  throw new Error("no chromium on PATH: apt-get install chromium (scripts/web_tests.sh does)");
}

export function launchChromium() {
  // As root (CI), Chromium only starts without its sandbox.
  return chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox"], headless: true });
}

const WEB_DIR = path.join(REPO, "http-edge", "web");
const TYPES = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

/**
 * Serves the same page files from another origin, pointed at `edgeUrl` by
 * its `allmine-chat-api` meta tag (as a site embedding the chat would), and
 * round avatars at `/avatar/<letter>-<rrggbb>.svg` for profile photos.
 * The edge URL can be set after start (`server.edgeUrl = ...`): the edge is
 * started after this server, whose origin its CORS setting must name.
 */
export async function startOtherOrigin() {
  const state = { edgeUrl: "" };
  const server = createServer(async (request, response) => {
    const url = new URL(request.url, "http://placeholder");
    try {
      const avatar = url.pathname.match(/^\/avatar\/([A-Z])-([0-9a-f]{6})\.svg$/);
      if (avatar) {
        response.writeHead(200, { "content-type": "image/svg+xml" });
        response.end(
          `<svg xmlns="http://www.w3.org/2000/svg" width="80" height="80" viewBox="0 0 80 80">` +
            `<circle cx="40" cy="40" r="40" fill="#${avatar[2]}"/>` +
            `<text x="40" y="53" font-family="sans-serif" font-size="36" fill="#fff" text-anchor="middle">${avatar[1]}</text></svg>`,
        );
        return;
      }
      if (url.pathname === "/") {
        const html = (await readFile(path.join(WEB_DIR, "index.html"), "utf8")).replace(
          '<meta name="allmine-chat-api" content="">',
          `<meta name="allmine-chat-api" content="${state.edgeUrl}">`,
        );
        response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        response.end(html);
        return;
      }
      const asset = url.pathname.match(/^\/app\/(chat\.(?:js|css))$/);
      if (asset) {
        response.writeHead(200, { "content-type": TYPES[path.extname(asset[1])] });
        response.end(await readFile(path.join(WEB_DIR, asset[1])));
        return;
      }
      response.writeHead(404).end();
    } catch (error) {
      response.writeHead(500).end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    set edgeUrl(value) {
      state.edgeUrl = value;
    },
    avatar(letter, color) {
      return `http://127.0.0.1:${port}/avatar/${letter}-${color}.svg`;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
