// The browser workflow in real headless Chromium, against the real server with the real
// Whisper plugin (and the `echo` and `slow` fixtures). One server for the whole file;
// every test gets a fresh browser context, so a fresh session cookie.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import {
  paths,
  startServer,
  launchBrowser,
  screenshot,
  unlabelledControls,
  waitForJob,
} from "../lib/harness.mjs";

const SPEECH = join(paths.speech, "goforward.wav");
const XSS = "<script>window.__xss=1</script>";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function newPage(options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error on ${page.url()}: ${m.text()} (${m.location().url})`);
  });
  return { context, page, problems };
}

async function assertLabelled(page) {
  assert.deepEqual(await unlabelledControls(page), [], `unlabelled controls on ${page.url()}`);
}

/** Step 1: chooses a plugin by its name (with the keyboard, like a keyboard user). */
async function choosePlugin(page, name) {
  await page.goto(`${server.url}/`);
  await page.waitForURL(/\/plugins/);
  const choose = page.getByRole("button", { name: `Choose ${name}` });
  await choose.focus();
  await page.keyboard.press("Enter");
  await page.locator("#config-form").waitFor();
  await page.getByRole("heading", { name: `Settings for ${name}` }).waitFor();
}

async function nextToFile(page) {
  await page.getByRole("button", { name: "Next: choose a file" }).click();
  await page.waitForURL(/\/file$/);
}

async function uploadFile(page, file) {
  await page.setInputFiles("#file-input", file);
  await page.locator("#upload-button").click();
}

/** Clicks Start; a fast job may already be on its results when the page loads. */
async function startJob(page) {
  await page.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/(jobs|results)\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop();
}

/** Records, in order, live segments appearing and the job's status changing. */
async function recordProgress(page) {
  const seen = [];
  await page.exposeFunction("__record", (what) => seen.push(what));
  await page.addInitScript(() => {
    document.addEventListener("DOMContentLoaded", () => {
      const job = document.getElementById("job");
      const list = document.getElementById("live-segments");
      if (!job || !list) return;
      new MutationObserver(() => window.__record(`segment:${list.children.length}`)).observe(list, { childList: true });
      new MutationObserver(() => window.__record(`status:${job.getAttribute("data-status")}`)).observe(job, {
        attributes: true,
        attributeFilter: ["data-status"],
      });
    });
  });
  return seen;
}

test("the full flow with real speech: plugin, setting, upload, live segment, result, SRT and VTT", { timeout: 180_000 }, async () => {
  const { context, page, problems } = await newPage();
  const seen = await recordProgress(page);

  await choosePlugin(page, "Whisper tiny.en");
  await screenshot(page, "plugin-step");
  await assertLabelled(page);
  // Folders that failed to load are shown with the reason.
  const failed = page.locator(".failed-card").filter({ hasText: "broken" });
  assert.match(await failed.textContent(), /not a valid WebAssembly component|WebAssembly/);

  // A value out of range is refused by the server, with the message beside the field.
  const beam = page.getByLabel("Beam size");
  await beam.fill("99");
  await page.getByRole("button", { name: "Next: choose a file" }).click();
  const beamError = page.locator('[data-field="beam_size"] .field-error');
  await beamError.waitFor();
  assert.match(await beamError.textContent(), /maximum/);
  await screenshot(page, "plugin-config-error");
  assert.match(page.url(), /\/plugins/);

  // Change a setting and save it as this user's default.
  await page.getByLabel("Beam size").fill("2");
  await page.getByRole("button", { name: "Save as my defaults" }).click();
  await page.getByText("Saved as your defaults.").waitFor();
  await nextToFile(page);
  await screenshot(page, "file-step");
  await assertLabelled(page);

  await page.setInputFiles("#file-input", SPEECH);
  await page.locator("#file-info").filter({ hasText: "goforward.wav" }).waitFor();
  assert.match(await page.locator("#file-info").textContent(), /KiB/);
  await page.locator("#upload-button").click();
  await page.waitForURL(/\/confirm$/);

  // The step survives a reload, and `/` comes back to it.
  await page.reload();
  assert.match(page.url(), /\/confirm$/);
  await page.goto(`${server.url}/`);
  await page.waitForURL(/\/confirm$/);
  const summary = await page.locator(".summary").textContent();
  assert.match(summary, /Whisper tiny\.en/);
  assert.match(summary, /goforward\.wav/);
  assert.match(summary, /Beam size:\s*2/);
  await screenshot(page, "confirm-step");

  const id = await startJob(page);
  assert.match(page.url(), /\/jobs\//, "Whisper takes long enough to show the progress page");
  await screenshot(page, "progress-step");
  await page.waitForURL(/\/results\//, { timeout: 120_000 });

  const firstSegment = seen.findIndex((s) => s.startsWith("segment:"));
  const done = seen.indexOf("status:completed");
  assert.ok(firstSegment >= 0, `no live segment was shown: ${seen.join(", ")}`);
  assert.ok(done > firstSegment, `a live segment must show before done: ${seen.join(", ")}`);

  const transcript = await page.locator("#segments").textContent();
  assert.match(transcript, /go forward/i);
  const usage = await page.locator("#usage").innerText();
  assert.match(usage, /ran [\d.]+ s in the sandbox · peak memory \d+ MiB/);
  assert.match(transcript, /(ten|10) met(er|re)s/i);
  assert.match(await page.locator(".segment .time").first().textContent(), /^0:00\.\d–0:0\d\.\d$/);
  await screenshot(page, "results-step");
  await assertLabelled(page);

  const srt = await download(page, "srt");
  assert.match(srt, /^1\r?\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}\r?\n.*go forward/im);
  const vtt = await download(page, "vtt");
  assert.match(vtt, /^WEBVTT/);
  assert.match(vtt, /00:00:\d\d\.\d{3} --> 00:00:\d\d\.\d{3}\r?\n.*go forward/im);

  // Clicking a segment plays the audio from there.
  const audio = await page.request.get(`${server.url}/results/${id}/audio`, { headers: { Range: "bytes=0-15" } });
  assert.equal(audio.status(), 206);
  await page.locator(".segment").first().click();
  assert.ok(await page.evaluate(() => document.getElementById("result-audio").src.endsWith("/audio")));

  // "Transcribe another file" keeps the plugin and goes back to the file step.
  await page.getByRole("button", { name: "Transcribe another file" }).click();
  await page.waitForURL(/\/file$/);

  // The saved default applies to a new session too.
  const other = await newPage();
  await choosePlugin(other.page, "Whisper tiny.en");
  assert.equal(await other.page.getByLabel("Beam size").inputValue(), "2");
  await other.page.getByRole("button", { name: "Reset to defaults" }).click();
  await other.page.getByText("Reset to the plugin's defaults.").waitFor();
  assert.equal(await other.page.getByLabel("Beam size").inputValue(), "5");
  await other.context.close();

  assert.deepEqual(problems, []);
  await context.close();
});

async function download(page, format) {
  const [file] = await Promise.all([page.waitForEvent("download"), page.locator(`[data-export="${format}"]`).click()]);
  assert.match(file.suggestedFilename(), new RegExp(`\\.${format}$`));
  return readFile(await file.path(), "utf8");
}

test("cancel during a run stops the job at once and leaves a usable page", { timeout: 120_000 }, async () => {
  const { context, page, problems } = await newPage();
  await choosePlugin(page, "Slow (test)");
  await page.getByRole("spinbutton", { name: "Steps" }).fill("60");
  await page.getByLabel("Step length (ms)").fill("250");
  await nextToFile(page);
  await uploadFile(page, SPEECH);
  await page.waitForURL(/\/confirm$/);
  const id = await startJob(page);
  await page.locator("#live-segments li").first().waitFor();
  await screenshot(page, "progress-running");

  const clicked = Date.now();
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("#job-outcome").filter({ hasText: "cancelled" }).waitFor({ timeout: 10_000 });
  const took = Date.now() - clicked;
  assert.ok(took < 5_000, `cancelling took ${took} ms`);
  await screenshot(page, "progress-cancelled");

  const job = await (await page.request.get(`${server.url}/api/jobs/${id}`)).json();
  assert.equal(job.status, "cancelled");

  // The page is usable: the way back leads to the file step.
  await page.getByRole("link", { name: "Choose a file" }).click();
  await page.waitForURL(/\/file$/);
  await page.locator("#file-input").waitFor({ state: "attached" });
  assert.deepEqual(problems, []);
  await context.close();
});

test("an undecodable file shows a clear message and nothing is queued", { timeout: 60_000 }, async () => {
  const { context, page } = await newPage();
  const bad = join(server.tmp, "not-audio.wav");
  await writeFile(bad, "this is a text file, not audio\n".repeat(20));
  const before = await (await page.request.get(`${server.url}/api/results`)).json();

  await choosePlugin(page, "Echo (test)");
  await nextToFile(page);
  await uploadFile(page, bad);
  const error = page.locator("#upload-error");
  await error.filter({ hasText: /cannot be transcribed/ }).waitFor();
  assert.match(await error.textContent(), /could not be read as audio/);
  assert.match(page.url(), /\/file$/);
  await screenshot(page, "file-undecodable");

  const active = await (await page.request.get(`${server.url}/api/jobs`)).json();
  assert.deepEqual(active.jobs, []);
  const afterwards = await (await page.request.get(`${server.url}/api/results`)).json();
  assert.equal(afterwards.total, before.total);
  // Nothing was chosen: the confirm step sends the browser back to the file step.
  await page.goto(`${server.url}/confirm`);
  await page.waitForURL(/\/file$/);
  await context.close();
});

test("a plugin that fails shows the reason in words and a way back", { timeout: 60_000 }, async () => {
  const { context, page } = await newPage();
  await choosePlugin(page, "Trap (test)");
  await nextToFile(page);
  await uploadFile(page, SPEECH);
  await page.waitForURL(/\/confirm$/);
  await startJob(page);
  const outcome = page.locator("#job-outcome");
  await outcome.filter({ hasText: "crashed" }).waitFor();
  assert.match(await outcome.textContent(), /The speech engine crashed while working on this file\./);
  await screenshot(page, "progress-failed");
  await page.getByRole("link", { name: "Try another file" }).click();
  await page.waitForURL(/\/file$/);
  await context.close();
});

test("a reload during the run reconnects, catches up and ends on the results", { timeout: 120_000 }, async () => {
  const { context, page, problems } = await newPage();
  await choosePlugin(page, "Slow (test)");
  await page.getByRole("spinbutton", { name: "Steps" }).fill("16");
  await page.getByLabel("Step length (ms)").fill("400");
  await nextToFile(page);
  await uploadFile(page, SPEECH);
  await page.waitForURL(/\/confirm$/);
  const id = await startJob(page);
  await page.locator("#live-segments li").nth(2).waitFor();

  await page.reload();
  // The segments so far come back at once (the event log is replayed) …
  await page.locator("#live-segments li").nth(2).waitFor({ timeout: 5_000 });
  await screenshot(page, "progress-after-reload");

  // … and the running job is found again from the start page, in another tab too.
  const tab = await context.newPage();
  await tab.goto(`${server.url}/`);
  await tab.waitForURL(new RegExp(`/jobs/${id}$`));
  await tab.close();

  await page.waitForURL(new RegExp(`/results/${id}$`), { timeout: 60_000 });
  const transcript = await page.locator("#segments").textContent();
  assert.match(transcript, /step 1\b/);
  assert.match(transcript, /step 16\b/);
  assert.deepEqual(problems, []);
  await context.close();
});

test("history search finds a result; delete removes it", { timeout: 60_000 }, async () => {
  const { context, page, problems } = await newPage();
  const audio = await readFile(SPEECH);
  const response = await page.request.post(`${server.url}/api/jobs`, {
    multipart: {
      file: { name: "zebra-talk.wav", mimeType: "audio/wav", buffer: audio },
      plugin: "echo",
      config: JSON.stringify({ prefix: "zebracorn " }),
    },
  });
  assert.equal(response.status(), 202);
  const { id } = await response.json();
  assert.equal((await waitForJob(page.request, server.url, id)).status, "completed");

  await page.goto(`${server.url}/history`);
  await page.getByLabel("Search transcripts and file names").fill("zebracorn");
  await page.locator("#history-count").filter({ hasText: /1 result for/ }).waitFor();
  const items = page.locator(".history-item");
  assert.equal(await items.count(), 1);
  assert.match(await items.first().textContent(), /zebra-talk\.wav/);
  await screenshot(page, "history-search");
  await assertLabelled(page);

  await page.getByLabel("Search transcripts and file names").fill("nosuchwordanywhere");
  await page.getByText("No transcript matches your search.").waitFor();
  await page.getByLabel("Search transcripts and file names").fill("zebracorn");
  await page.locator(".history-item").first().waitFor();

  // Open works.
  await page.getByRole("link", { name: "Open zebra-talk.wav" }).click();
  await page.waitForURL(new RegExp(`/results/${id}$`));
  await page.goBack();
  await page.getByLabel("Search transcripts and file names").waitFor();
  if ((await page.locator(".history-item").count()) === 0) {
    await page.getByLabel("Search transcripts and file names").fill("zebracorn");
    await page.locator(".history-item").first().waitFor();
  }

  let asked = "";
  page.once("dialog", (dialog) => {
    asked = dialog.message();
    dialog.accept();
  });
  await page.getByRole("button", { name: "Delete zebra-talk.wav" }).click();
  await page.locator(`.history-item[data-id="${id}"]`).waitFor({ state: "detached" });
  assert.match(asked, /Delete the transcript of “zebra-talk\.wav”/);
  assert.equal((await page.request.get(`${server.url}/api/results/${id}`)).status(), 404);
  await page.goto(`${server.url}/history?q=zebracorn`);
  await page.getByText("No transcript matches your search.").waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("a <script> in a transcript is shown as text, never run", { timeout: 60_000 }, async () => {
  const { context, page, problems } = await newPage();
  await choosePlugin(page, "Echo (test)");
  await page.getByLabel("Prefix").fill(XSS);
  await page.getByLabel("Window (ms)").fill("500");
  await nextToFile(page);
  await uploadFile(page, SPEECH);
  await page.waitForURL(/\/confirm$/);
  assert.match(await page.locator(".summary").textContent(), /<script>window\.__xss=1<\/script>/);
  await startJob(page);
  await page.waitForURL(/\/results\//);

  const first = await page.locator(".segment .text").first().textContent();
  assert.ok(first.startsWith(XSS), `shown as text: ${first}`);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.locator("#segments script").count(), 0);
  await screenshot(page, "results-escaped-script");

  await page.goto(`${server.url}/history`);
  assert.match(await page.locator(".history-item .preview").first().textContent(), /<script>window\.__xss=1/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.deepEqual(problems, []);
  await context.close();
});

test("media folders, settings and a phone-width layout", { timeout: 60_000 }, async () => {
  const { context, page, problems } = await newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  await choosePlugin(page, "Echo (test)");
  await screenshot(page, "phone-plugin-step");
  await nextToFile(page);
  await page.getByLabel("Search files").fill("forward");
  await page.locator("#media-list .row").filter({ hasText: "talks/goforward.wav" }).waitFor();
  await screenshot(page, "phone-file-step-media");
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
  assert.ok(fits, "no sideways scrolling at phone width");
  // A path that leaves the media folder is refused.
  const escape = await page.request.get(`${server.url}/media/0/..%2Fsandscribe.toml`);
  assert.equal(escape.status(), 403);
  await page.getByRole("button", { name: "Use talks/goforward.wav" }).click();
  await page.waitForURL(/\/confirm$/);
  assert.match(await page.locator(".summary").textContent(), /from a media folder/);

  await page.goto(`${server.url}/settings`);
  await page.getByLabel("Auto-save plugin settings").check();
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  assert.ok(await page.getByLabel("Auto-save plugin settings").isChecked());
  assert.match(await page.locator(".limits").textContent(), /Largest upload/);
  await screenshot(page, "phone-settings");
  await assertLabelled(page);
  assert.deepEqual(problems, []);
  await context.close();
});
