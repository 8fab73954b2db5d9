// Sessions, origins and served files in real headless Chromium, against one server with
// keys for tenants "a" and "b":
// - one browser context shared by two logins in turn: B finds nothing of A (no staged
//   file at Confirm, nothing for Start, not A's audio);
// - two browser contexts, with a session id planted into each (fixation) and A's own
//   session cookie copied into B's: still nothing of A's reaches B;
// - a page on a sibling origin (another port of 127.0.0.1: the same site, so Chromium
//   sends A's SameSite=Strict login cookie along) submitting a job into A's account with
//   a no-cors fetch: refused, and no job appears;
// - a WAV named poly.html with a script in a chunk, opened at its audio URL, and a TXT
//   export that is valid JavaScript, loaded as a same-origin script: neither runs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import {
  paths,
  serverAndBrowserPerFile,
  screenshot,
  waitForJob,
  newContext as contextOf,
  logIn as logInWith,
} from "../lib/harness.mjs";

const SPEECH = join(paths.speech, "goforward.wav");
const KEYS = { a: "sessions-a-browser-key", b: "sessions-b-browser-key" };
const SESSION = "sandscribe_session";

let server;
let browser;
serverAndBrowserPerFile({ keys: KEYS }, (s, b) => {
  server = s;
  browser = b;
});

const newContext = () => contextOf(browser);

const logIn = (page, tenant) => logInWith(page, server.url, KEYS[tenant], tenant);

async function logOut(page) {
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login$/);
}

/** Chooses Echo and uploads `file`: the page is then at Confirm. */
async function stageEcho(page, file, settings = async () => {}) {
  await page.goto(`${server.url}/plugins`);
  // "Choose", or "Selected" when this session chose it before.
  await page.getByRole("button", { name: /^(Choose Echo \(test\)|Echo \(test\) is selected)/ }).click();
  await page.getByRole("heading", { name: "Settings for Echo (test)" }).waitFor();
  await settings(page);
  await page.getByRole("button", { name: "Next: choose a file" }).click();
  await page.waitForURL(/\/file$/);
  await page.setInputFiles("#file-input", file);
  await page.locator("#upload-button").click();
  await page.waitForURL(/\/confirm$/);
}

/** Starts the job and waits for its results (echo is quick), so that the progress page's
 * own move to the results cannot interrupt the test's next navigation. */
async function start(page) {
  await page.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/results\/[0-9a-f-]{36}$/);
  return page.url().split("/").pop();
}

async function sessionCookie(context) {
  return (await context.cookies(server.url)).find((c) => c.name === SESSION)?.value;
}

async function plant(context, value) {
  await context.addCookies([{ name: SESSION, value, url: server.url }]);
}

/** Where `path` leads this page. */
async function landsOn(page, path) {
  await page.goto(`${server.url}${path}`);
  return new URL(page.url()).pathname;
}

/** B's own jobs and results, through the JSON API the pages' scripts use. */
async function assertNothingFor(page) {
  assert.deepEqual((await (await page.request.get(`${server.url}/api/jobs`)).json()).jobs, []);
  assert.equal((await (await page.request.get(`${server.url}/api/results`)).json()).total, 0);
}

/** A WAV file with a `junk` chunk holding `html` right after its header. */
async function polyglot(html) {
  const wav = await readFile(SPEECH);
  const page = Buffer.from(html.length % 2 ? `${html} ` : html);
  const junk = Buffer.alloc(8);
  junk.write("junk", 0, "latin1");
  junk.writeUInt32LE(page.length, 4);
  const out = Buffer.concat([wav.subarray(0, 12), junk, page, wav.subarray(12)]);
  out.writeUInt32LE(out.length - 8, 4);
  return out;
}

test("one browser shared by two logins in turn: B finds nothing of A", { timeout: 120_000 }, async () => {
  const { context, page, problems } = await newContext();
  await logIn(page, "a");
  await stageEcho(page, SPEECH);
  const done = await start(page);
  await waitForJob(page.request, server.url, done);
  const audioUrl = `${server.url}/results/${done}/audio`;
  assert.equal((await page.request.get(audioUrl)).status(), 200);
  // A second file, with a name that appears nowhere else.
  const secret = join(server.tmp, "a-private-talk.wav");
  await copyFile(SPEECH, secret);
  await stageEcho(page, secret);
  assert.match(await page.locator("main").textContent(), /a-private-talk\.wav/);
  await logOut(page);

  await logIn(page, "b");
  assert.equal(await landsOn(page, "/"), "/plugins");
  assert.equal(await landsOn(page, "/confirm"), "/plugins");
  assert.doesNotMatch(await page.locator("main").textContent(), /a-private-talk|Jobs in progress/);
  await page.getByRole("button", { name: "Choose Echo (test)" }).click();
  await page.getByRole("heading", { name: "Settings for Echo (test)" }).waitFor();
  assert.equal(await landsOn(page, "/confirm"), "/file");
  assert.doesNotMatch(await page.locator("main").textContent(), /a-private-talk/);
  await screenshot(page, "sessions-b-after-a-in-the-same-browser");
  const started = await page.request.post(`${server.url}/start`, { headers: { Origin: server.url } });
  assert.doesNotMatch(new URL(started.url()).pathname, /^\/(jobs|results)\//, "Start had nothing to start");
  assert.equal((await page.request.get(audioUrl)).status(), 404, "A's audio");
  await assertNothingFor(page);
  assert.deepEqual(problems, []);
  await context.close();
});

test("two browsers, a planted session id and a copied one: nothing of A's reaches B", { timeout: 120_000 }, async () => {
  const chosen = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f";
  const a = await newContext();
  await plant(a.context, chosen);
  await logIn(a.page, "a");
  await plant(a.context, chosen);
  await stageEcho(a.page, SPEECH);
  const issued = await sessionCookie(a.context);
  assert.ok(issued && issued !== chosen, `the server made its own session id (${issued})`);

  const b = await newContext();
  await logIn(b.page, "b");
  for (const planted of [chosen, issued]) {
    await plant(b.context, planted);
    assert.equal(await landsOn(b.page, "/confirm"), "/plugins", `B with session ${planted}`);
    assert.notEqual(await sessionCookie(b.context), planted, "replaced by a fresh session");
    await plant(b.context, planted);
    const started = await b.page.request.post(`${server.url}/start`, { headers: { Origin: server.url } });
    assert.doesNotMatch(new URL(started.url()).pathname, /^\/(jobs|results)\//);
  }
  await assertNothingFor(b.page);

  // A's upload is still A's.
  await a.page.goto(`${server.url}/confirm`);
  assert.match(await a.page.locator("main").textContent(), /goforward\.wav/);
  assert.deepEqual(a.problems, []);
  assert.deepEqual(b.problems, []);
  await a.context.close();
  await b.context.close();
});

test("a sibling origin cannot submit a job with A's login cookie", { timeout: 60_000 }, async () => {
  const a = await newContext();
  await logIn(a.page, "a");
  const wav = (await readFile(SPEECH)).toString("base64");
  const target = server.url;
  // A page of another port on the same host: Chromium counts it as the same site.
  const attacker = createServer((_, response) => {
    response.writeHead(200, { "content-type": "text/html" });
    response.end(`<!doctype html><title>waiting</title><script>
      const bytes = Uint8Array.from(atob("${wav}"), (c) => c.charCodeAt(0));
      const form = new FormData();
      form.append("plugin", "echo");
      form.append("file", new Blob([bytes], { type: "audio/wav" }), "csrf.wav");
      fetch("${target}/api/jobs", { method: "POST", mode: "no-cors", credentials: "include", body: form })
        .then(() => { document.title = "sent"; }, () => { document.title = "failed"; });
    </script>`);
  });
  await new Promise((resolve) => attacker.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${attacker.address().port}`;
  try {
    const attack = await a.context.newPage();
    await attack.goto(`${origin}/`);
    await attack.waitForFunction(() => document.title !== "waiting");
    await attack.close();
  } finally {
    attacker.close();
  }
  // The request reached the server with A's cookie and was refused there.
  const deadline = Date.now() + 5_000;
  while (!/refused a request.*\/api\/jobs|\/api\/jobs.*refused a request/.test(server.logs())) {
    assert.ok(Date.now() < deadline, `no refusal in the server log:\n${server.logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const jobs = (await (await a.page.request.get(`${server.url}/api/jobs`)).json()).jobs;
  const results = (await (await a.page.request.get(`${server.url}/api/results?q=csrf`)).json()).items;
  assert.deepEqual([...jobs, ...results].filter((j) => j.file_name === "csrf.wav"), []);
  await a.context.close();
});

test("a polyglot upload plays as audio and an export that is JavaScript never runs", { timeout: 120_000 }, async () => {
  const { context, page, problems } = await newContext();
  let dialogs = 0;
  page.on("dialog", (d) => {
    dialogs += 1;
    d.dismiss();
  });
  await logIn(page, "a");
  const poly = join(server.tmp, "poly.html");
  await writeFile(poly, await polyglot("<!doctype html><script>document.title='pwned';alert(1)</script>"));
  await stageEcho(page, poly, async (p) => p.getByLabel("Prefix").fill("window.__pwned=1;//"));
  const id = await start(page);
  await waitForJob(page.request, server.url, id);

  // As a script of the results page (its policy allows same-origin scripts): blocked.
  await page.goto(`${server.url}/results/${id}`);
  const outcome = await page.evaluate(
    (src) =>
      new Promise((resolve) => {
        const script = document.createElement("script");
        script.src = src;
        script.onload = () => resolve("ran");
        script.onerror = () => resolve("blocked");
        document.head.append(script);
      }),
    `/api/results/${id}/export?format=txt`,
  );
  assert.equal(outcome, "blocked");
  assert.equal(await page.evaluate(() => window.__pwned), undefined);

  // Opened directly: audio, with the sandbox, and the page in it never runs.
  const response = await page.goto(`${server.url}/results/${id}/audio`);
  assert.equal(response.headers()["content-type"], "audio/wav");
  assert.equal(response.headers()["x-content-type-options"], "nosniff");
  assert.match(response.headers()["content-security-policy"], /sandbox/);
  await page.waitForTimeout(500);
  assert.notEqual(await page.title(), "pwned");
  assert.equal(dialogs, 0);
  await screenshot(page, "sessions-polyglot-opened-as-audio");
  assert.deepEqual(problems, []);
  await context.close();
});
