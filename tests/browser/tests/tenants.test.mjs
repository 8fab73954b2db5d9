// Two tenants on one server, in real headless Chromium: each logs in with its own API
// key in its own browser context, and the browser shows B nothing of A — not in the
// history, not in search, not behind A's URLs typed in directly, not on the start page.
// One server (keys for tenants "a" and "b") for the whole file.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";

import { paths, serverAndBrowserPerFile, screenshot, newContext, logIn as logInWith } from "../lib/harness.mjs";

const SPEECH = join(paths.speech, "goforward.wav");
const KEYS = { a: "tenant-a-browser-key", b: "tenant-b-browser-key" };
// A word no transcript has by chance: A's echo job puts it into A's transcript.
const SECRET = "aardvarkquartz";

let server;
let browser;
serverAndBrowserPerFile({ keys: KEYS }, (s, b) => {
  server = s;
  browser = b;
});

/** A page in a browser context of its own: its own cookies, so its own login. */
const newPage = () => newContext(browser);

const logIn = (page, tenant) => logInWith(page, server.url, KEYS[tenant], tenant);

async function choosePlugin(page, name) {
  await page.goto(`${server.url}/plugins`);
  await page.getByRole("button", { name: `Choose ${name}` }).click();
  await page.getByRole("heading", { name: `Settings for ${name}` }).waitFor();
}

/** From the plugin's settings through the file step to Start; returns the job id. */
async function uploadAndStart(page) {
  await page.getByRole("button", { name: "Next: choose a file" }).click();
  await page.waitForURL(/\/file$/);
  await page.setInputFiles("#file-input", SPEECH);
  await page.locator("#upload-button").click();
  await page.waitForURL(/\/confirm$/);
  await page.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/(jobs|results)\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop();
}

test("a page without a login goes to the login page, and a wrong key is refused", { timeout: 60_000 }, async () => {
  const { context, page, problems } = await newPage();
  for (const path of ["/", "/history", "/settings", `/results/${crypto.randomUUID()}`]) {
    await page.goto(`${server.url}${path}`);
    await page.waitForURL(/\/login$/);
    await page.getByRole("heading", { name: "Log in" }).waitFor();
    assert.match(await page.locator("main").textContent(), /Enter the API key you were given/);
  }
  await page.getByLabel("API key").fill("not-a-key");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: "That key is not valid." }).waitFor();
  await screenshot(page, "tenants-login-refused");
  // Without a login the JSON API answers 401 too, whatever the browser sends.
  assert.equal((await page.request.get(`${server.url}/api/results`)).status(), 401);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the browser shows B nothing of A", { timeout: 120_000 }, async () => {
  // A transcribes a file (its transcript holds SECRET) and leaves a long job running.
  const a = await newPage();
  await logIn(a.page, "a");
  await choosePlugin(a.page, "Echo (test)");
  await a.page.getByLabel("Prefix").fill(`${SECRET} `);
  const done = await uploadAndStart(a.page);
  await a.page.waitForURL(new RegExp(`/results/${done}$`));
  assert.match(await a.page.locator("#segments").textContent(), new RegExp(SECRET));

  await choosePlugin(a.page, "Slow (test)");
  await a.page.getByRole("spinbutton", { name: "Steps" }).fill("200");
  await a.page.getByLabel("Step length (ms)").fill("250");
  const running = await uploadAndStart(a.page);
  assert.match(a.page.url(), new RegExp(`/jobs/${running}$`));

  // What A sees, so that B seeing none of it means something.
  await a.page.goto(`${server.url}/`);
  await a.page.waitForURL(new RegExp(`/jobs/${running}$`));
  await a.page.goto(`${server.url}/plugins`);
  assert.match(await a.page.locator("section.banner").textContent(), /Jobs in progress[\s\S]*goforward\.wav/);
  await a.page.goto(`${server.url}/history?q=${SECRET}`);
  assert.match(await a.page.locator("#history-count").textContent(), /1 result for “aardvarkquartz”/);
  assert.equal(await a.page.locator(".history-item").count(), 1);

  // B, in a browser context of its own.
  const b = await newPage();
  await logIn(b.page, "b");

  // The start page leads B to the plugins, with no job in progress and no trace of A's file.
  await b.page.goto(`${server.url}/`);
  await b.page.waitForURL(/\/plugins$/);
  assert.equal(await b.page.locator("section.banner").count(), 0, "no “Jobs in progress” for B");
  let text = await b.page.locator("body").textContent();
  assert.doesNotMatch(text, /goforward|Jobs in progress/);

  // History: empty, and searching for A's words finds nothing.
  await b.page.goto(`${server.url}/history`);
  await b.page.getByText("Nothing transcribed yet.").waitFor();
  assert.equal(await b.page.locator("#history-count").textContent(), "0 results.");
  assert.equal(await b.page.locator(".history-item").count(), 0);
  await screenshot(b.page, "tenants-b-empty-history");
  await b.page.getByLabel("Search transcripts and file names").fill(SECRET);
  await b.page.getByText("No transcript matches your search.").waitFor();
  assert.match(await b.page.locator("#history-count").textContent(), /0 results for “aardvarkquartz”/);
  await b.page.getByLabel("Search transcripts and file names").fill("goforward");
  await b.page.locator("#history-count").filter({ hasText: "0 results for “goforward”" }).waitFor();
  await screenshot(b.page, "tenants-b-search-finds-nothing");

  // A's pages, opened directly: "not found", with none of A's text.
  for (const [path, what] of [
    [`/results/${done}`, /Result not found\./],
    [`/jobs/${running}`, /Job not found\./],
    [`/jobs/${done}`, /Job not found\./],
  ]) {
    const response = await b.page.goto(`${server.url}${path}`);
    assert.equal(response.status(), 404, path);
    await b.page.getByRole("heading", { name: "Something went wrong" }).waitFor();
    text = await b.page.locator("main").textContent();
    assert.match(text, what, path);
    assert.match(text, /HTTP status 404/, path);
    assert.doesNotMatch(await b.page.content(), new RegExp(`${SECRET}|goforward|Echo \\(test\\)|Slow \\(test\\)`), path);
  }
  await screenshot(b.page, "tenants-b-results-of-a-not-found");
  // The downloads and the data behind A's pages answer "not found" as well.
  for (const path of [
    `/api/results/${done}/export?format=srt`,
    `/api/results/${done}/export?format=txt`,
    `/api/results/${done}`,
    `/results/${done}/audio`,
    `/api/jobs/${running}`,
    `/api/jobs/${running}/events`,
  ]) {
    const response = await b.page.request.get(`${server.url}${path}`);
    assert.equal(response.status(), 404, path);
    assert.doesNotMatch(await response.text(), new RegExp(`${SECRET}|goforward`), path);
  }
  // Nor can B stop A's job: the cancel form leads to "not found", and the job runs on.
  const cancel = await b.page.request.post(`${server.url}/jobs/${running}/cancel`, {
    headers: { Origin: server.url },
  });
  assert.equal(cancel.status(), 404);
  const job = await (await a.page.request.get(`${server.url}/api/jobs/${running}`)).json();
  assert.equal(job.status, "running", "B's cancel must not touch A's job");
  assert.deepEqual((await (await b.page.request.get(`${server.url}/api/jobs`)).json()).jobs, []);
  assert.equal((await (await b.page.request.get(`${server.url}/api/results`)).json()).total, 0);

  // Logging out (the header's button) ends B's login: pages go back to the login page.
  await b.page.goto(`${server.url}/history`);
  await b.page.getByRole("button", { name: "Log out" }).click();
  await b.page.waitForURL(/\/login$/);
  await b.page.goto(`${server.url}/history`);
  await b.page.waitForURL(/\/login$/);

  // A, meanwhile, still has everything; its running job is cancelled to end the test.
  await a.page.goto(`${server.url}/jobs/${running}`);
  await a.page.getByRole("button", { name: "Cancel" }).click();
  await a.page.locator("#job-outcome").filter({ hasText: "cancelled" }).waitFor();
  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await a.context.close();
  await b.context.close();
});
