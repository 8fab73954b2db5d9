// Starts the real sandscribe server with real plugins, and real headless Chromium.
//
// Paths come from the environment `cargo xtask test` sets, with defaults that work from
// a checkout after `cargo xtask setup`:
//   SANDSCRIBE_BIN             target/release/sandscribe
//   SANDSCRIBE_PLUGINS         plugins/            (whisper-tiny-en)
//   SANDSCRIBE_FIXTURE_PLUGINS target/fixture-plugins/ (echo, slow, trap)
//   SANDSCRIBE_SPEECH_DIR      target/speech/
//   SANDSCRIBE_SCREENSHOTS     target/browser-screenshots/
//   CHROMIUM                   /usr/bin/chromium

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, symlink, copyFile, writeFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { before, after } from "node:test";
import { chromium } from "playwright-core";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export const paths = {
  bin: process.env.SANDSCRIBE_BIN || join(root, "target/release/sandscribe"),
  plugins: process.env.SANDSCRIBE_PLUGINS || join(root, "plugins"),
  fixtures: process.env.SANDSCRIBE_FIXTURE_PLUGINS || join(root, "target/fixture-plugins"),
  speech: process.env.SANDSCRIBE_SPEECH_DIR || join(root, "target/speech"),
  screenshots: process.env.SANDSCRIBE_SCREENSHOTS || join(root, "target/browser-screenshots"),
  chromium: process.env.CHROMIUM || "/usr/bin/chromium",
};

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** One temp plugins folder with whisper-tiny-en, echo, slow, trap and the fakespeakers
 * diarizer (symlinks), a media folder, a data folder; then `sandscribe serve` on a free port.
 *
 * `apiKeys`: `[{ key, tenant, role }]` (keys in clear; the config gets their sha256). With
 * none, the server runs in single-user mode and the pages need no login. */
export async function startServer({ apiKeys = [] } = {}) {
  const tmp = await mkdtemp(join(tmpdir(), "sandscribe-browser-"));
  const plugins = join(tmp, "plugins");
  const media = join(tmp, "media", "talks");
  await mkdir(plugins, { recursive: true });
  await mkdir(media, { recursive: true });
  const wanted = [
    [paths.plugins, "whisper-tiny-en"],
    [paths.fixtures, "echo"],
    [paths.fixtures, "slow"],
    [paths.fixtures, "trap"],
    [paths.fixtures, "fakespeakers"],
  ];
  for (const [dir, id] of wanted) {
    const source = join(dir, id);
    if (!existsSync(join(source, "plugin.wasm"))) {
      throw new Error(`${source}/plugin.wasm is missing; run \`cargo xtask setup\` first`);
    }
    await symlink(source, join(plugins, id));
  }
  // A folder that is not a plugin, to show how load failures look.
  await mkdir(join(plugins, "broken"));
  await writeFile(join(plugins, "broken", "plugin.wasm"), "not WebAssembly");
  await copyFile(join(paths.speech, "goforward.wav"), join(media, "goforward.wav"));
  const config = join(tmp, "sandscribe.toml");
  const keys = apiKeys
    .map(({ key, tenant, role = "user" }) => {
      const sha256 = createHash("sha256").update(key).digest("hex");
      return `[[api_keys]]\nsha256 = "${sha256}"\ntenant = ${JSON.stringify(tenant)}\nrole = "${role}"\n`;
    })
    .join("");
  await writeFile(
    config,
    `media_folders = [${JSON.stringify(join(tmp, "media"))}]\n[jobs]\nmax_running = 2\nheartbeat_seconds = 2\n${keys}`,
  );
  const child = spawn(
    paths.bin,
    ["serve", "--config", config, "--listen", "127.0.0.1:0", "--plugins", plugins, "--data", join(tmp, "data")],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" } },
  );
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 120 s:\n${stderr}`)), 120_000);
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      clearTimeout(timer);
      const match = /^listening on (http:\/\/\S+)/.exec(line);
      if (match) resolveUrl(match[1]);
      else reject(new Error(`unexpected first line from the server: ${line}\n${stderr}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}):\n${stderr}`));
    });
  });
  return {
    url,
    tmp,
    logs: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** For a whole test file: one server (`options` as for `startServer`; `keys` maps each
 * tenant to its API key) and one Chromium, started before the file's tests and stopped
 * after them; `ready(server, browser)` receives both. */
export function serverAndBrowserPerFile({ keys = {}, ...options }, ready) {
  let server;
  let browser;
  before(async () => {
    const apiKeys = Object.entries(keys).map(([tenant, key]) => ({ key, tenant }));
    server = await startServer({ apiKeys, ...options });
    browser = await launchBrowser();
    ready(server, browser);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
}

export async function launchBrowser() {
  if (!existsSync(paths.chromium)) {
    throw new Error(`${paths.chromium} is missing; \`cargo xtask test\` installs Debian's chromium`);
  }
  return chromium.launch({ executablePath: paths.chromium, args: CHROMIUM_ARGS, headless: true });
}

/** A page in a browser context of its own (its own cookies, so its own login and
 * session), collecting the page's uncaught errors in `problems`. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

/** Logs in through the login form with `key`, like a person with the key would; the page
 * is then at the plugin step, whose header names `tenant`. */
export async function logIn(page, base, key, tenant) {
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login$/);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/plugins$/);
  const shown = await page.locator("#logged-in-as").textContent();
  if (shown !== tenant) throw new Error(`logged in as ${shown}, not ${tenant}`);
}

let shots = 0;
/** Saves a numbered full-page screenshot under target/browser-screenshots/. */
export async function screenshot(page, name) {
  await mkdir(paths.screenshots, { recursive: true });
  shots += 1;
  const file = join(paths.screenshots, `${String(shots).padStart(2, "0")}-${name}.png`);
  // caret: "initial" — hiding the caret injects a <style>, which the pages' CSP refuses.
  await page.screenshot({ path: file, fullPage: true, caret: "initial" });
  return file;
}

/** Every visible form control has an accessible name (a label or aria-label). */
export async function unlabelledControls(page) {
  return page.evaluate(() => {
    const missing = [];
    for (const el of document.querySelectorAll("input, select, textarea, button")) {
      if (el.type === "hidden") continue;
      const labelled =
        (el.labels && el.labels.length > 0) ||
        el.getAttribute("aria-label") ||
        el.getAttribute("aria-labelledby") ||
        (el.tagName === "BUTTON" && el.textContent.trim());
      if (!labelled) missing.push(el.outerHTML.slice(0, 120));
    }
    return missing;
  });
}

/** Polls the JSON API until the job has finished. */
export async function waitForJob(request, base, id, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await request.get(`${base}/api/jobs/${id}`);
    const job = await response.json();
    if (!["queued", "running"].includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
