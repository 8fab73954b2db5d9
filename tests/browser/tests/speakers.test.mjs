// Speakers on the results page, in real headless Chromium: a diarized result (the `echo`
// transcriber, then the `fakespeakers` diarizer, which alternates SPEAKER_1 and SPEAKER_2
// one segment each) shows each segment's speaker by name in its own colour; the Speakers
// box renames a speaker with a plain form, the name survives a reload and the VTT export
// link carries it; a failed detection is said above the transcript.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import {
  paths,
  serverAndBrowserPerFile,
  newContext,
  screenshot,
  unlabelledControls,
  waitForJob,
} from "../lib/harness.mjs";

let server;
let browser;
serverAndBrowserPerFile({}, (s, b) => {
  server = s;
  browser = b;
});

/** Submits `goforward.wav` to echo (1 s windows) with the fakespeakers diarizer. */
async function diarizedJob(page, diarizerConfig = {}) {
  const audio = await readFile(join(paths.speech, "goforward.wav"));
  const response = await page.request.post(`${server.url}/api/jobs`, {
    multipart: {
      file: { name: "interview.wav", mimeType: "audio/wav", buffer: audio },
      plugin: "echo",
      config: JSON.stringify({ window_ms: 1000 }),
      diarizer: "fakespeakers",
      diarizer_config: JSON.stringify(diarizerConfig),
    },
  });
  assert.equal(response.status(), 202, await response.text());
  const { id } = await response.json();
  const job = await waitForJob(page.request, server.url, id);
  assert.equal(job.status, "completed", JSON.stringify(job));
  return job;
}

test("two speakers in two colours; a rename is kept and reaches the VTT export", { timeout: 120_000 }, async () => {
  const { context, page, problems } = await newContext(browser);
  const job = await diarizedJob(page);
  assert.ok(job.result.transcript.segments.length >= 2, "at least two turns");

  await page.goto(`${server.url}/results/${job.id}`);
  const tags = page.locator("#segments .speaker");
  assert.deepEqual((await tags.allTextContents()).slice(0, 4), ["Speaker 1", "Speaker 2", "Speaker 1", "Speaker 2"].slice(0, await tags.count()));
  const colour = (n) => tags.nth(n).evaluate((el) => getComputedStyle(el).color);
  assert.notEqual(await colour(0), await colour(1), "each speaker has its own colour");
  if ((await tags.count()) > 2) assert.equal(await colour(0), await colour(2), "a speaker keeps its colour");
  await page.locator("#speakers").getByRole("heading", { name: "Speakers" }).waitFor();
  await screenshot(page, "speakers-before-rename");
  assert.deepEqual(await unlabelledControls(page), []);

  await page.getByLabel("Speaker 1", { exact: true }).fill("Interviewer");
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(new RegExp(`/results/${job.id}$`));
  await page.reload();
  assert.equal(await page.getByLabel("Speaker 1", { exact: true }).inputValue(), "Interviewer");
  assert.equal(await tags.first().textContent(), "Interviewer");
  assert.equal(await tags.nth(1).textContent(), "Speaker 2");
  await screenshot(page, "speakers-renamed");

  const href = await page.locator('a[data-export="vtt"]').getAttribute("href");
  const vtt = await (await page.request.get(new URL(href, server.url).href)).text();
  assert.match(vtt, /^WEBVTT\n/);
  assert.match(vtt, /\n<v Interviewer>window 1 /);
  assert.match(vtt, /\n<v Speaker 2>window 2 /);

  // A refused name is shown on the page, and the saved one stays.
  await page.getByLabel("Speaker 2", { exact: true }).evaluate((el) => el.removeAttribute("maxlength"));
  await page.getByLabel("Speaker 2", { exact: true }).fill("z".repeat(80));
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#speaker-error").filter({ hasText: /at most 64/ }).waitFor();
  assert.equal(await tags.first().textContent(), "Interviewer");
  assert.deepEqual(problems, []);
  await context.close();
});

test("a failed detection is said above the transcript", { timeout: 60_000 }, async () => {
  const { context, page, problems } = await newContext(browser);
  const job = await diarizedJob(page, { fail: "error" });
  await page.goto(`${server.url}/results/${job.id}`);
  const notice = page.locator("#diarization-failed");
  assert.match(await notice.textContent(), /^Speaker detection failed: .*asked to fail/);
  assert.equal(await page.locator("#speakers").count(), 0, "nothing to rename");
  assert.equal(await page.locator("#segments .speaker").count(), 0);
  assert.ok((await page.locator("#segments .segment").count()) >= 2, "the transcript is there");
  assert.deepEqual(problems, []);
  await context.close();
});

test("the word being spoken is marked while the audio plays, and a click on a word plays from it", { timeout: 120_000 }, async () => {
  const { context, page, problems } = await newContext(browser);
  const audio = await readFile(join(paths.speech, "goforward.wav"));
  const response = await page.request.post(`${server.url}/api/jobs`, {
    multipart: {
      file: { name: "words.wav", mimeType: "audio/wav", buffer: audio },
      plugin: "echo",
      // Echo's words: four per 1 s window ("window 1 level 37"), each a quarter second.
      config: JSON.stringify({ window_ms: 1000, words: true }),
    },
  });
  assert.equal(response.status(), 202, await response.text());
  const { id } = await response.json();
  const job = await waitForJob(page.request, server.url, id);
  assert.equal(job.status, "completed", JSON.stringify(job));
  const timed = job.result.transcript.segments.flatMap((s) => s.words);

  await page.goto(`${server.url}/results/${id}`);
  const words = page.locator("#segments .word");
  assert.equal(await words.count(), timed.length, "every timed word is its own span");
  assert.deepEqual(await words.allTextContents(), timed.map((w) => w.text.trim()));

  // A click on the sixth word (second window, second word) seeks to where it starts.
  const sixth = timed[5];
  await page.locator("#result-audio").evaluate((el) => { el.muted = true; });
  await words.nth(5).click();
  await page.waitForFunction(() => !document.getElementById("result-audio").paused || document.getElementById("result-audio").currentTime > 0);
  const at = await page.locator("#result-audio").evaluate((el) => el.currentTime * 1000);
  assert.ok(at >= sixth.start_ms - 1 && at < sixth.end_ms + 400, `seeked to ${at} ms for a word at ${sixth.start_ms}`);
  // While it plays, one word at a time is marked, and it is the one under the playhead.
  await page.locator("#segments .word.speaking").first().waitFor();
  const marked = await page.evaluate(() => {
    const audio = document.getElementById("result-audio");
    audio.pause();
    audio.dispatchEvent(new Event("timeupdate"));
    const now = audio.currentTime * 1000;
    const speaking = Array.from(document.querySelectorAll("#segments .word.speaking"));
    return { now, spans: speaking.map((w) => [Number(w.dataset.startMs), Number(w.dataset.endMs)]) };
  });
  assert.equal(marked.spans.length, 1, JSON.stringify(marked));
  const [start, end] = marked.spans[0];
  assert.ok(start <= marked.now && marked.now <= end, JSON.stringify(marked));
  assert.equal(await page.locator("#segments .word.speaking").getAttribute("aria-current"), "true");
  await screenshot(page, "words-speaking");
  assert.deepEqual(problems, []);
  await context.close();
});
