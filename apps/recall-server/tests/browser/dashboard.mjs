// The dashboard in a real browser (Debian's chromium, driven by
// playwright-core), against a running Recall server seeded through its real
// post-call webhook with signed events built from the ElevenLabs fixtures.
//
// Run by scripts/browser-test.sh, which builds and starts the server and
// sets:
//   RECALL_URL          http://127.0.0.1:<port>
//   ADMIN_TOKEN         a token of RECALL_ADMIN_TOKEN
//   POST_CALL_KEY       ELEVENLABS_POST_CALL_KEY
//   FIXTURES            the fixtures folder (shared/fixtures/elevenlabs)
//   ARTIFACTS           where screenshots go
//   PLAYWRIGHT_FROM     the package.json whose node_modules holds playwright-core
//
// Prints one line per check and a closing "N passed, N failed" line; exits
// non-zero when a check fails.

import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};
const BASE = env("RECALL_URL");
const TOKEN = env("ADMIN_TOKEN");
const KEY = env("POST_CALL_KEY");
const FIXTURES = env("FIXTURES");
const ARTIFACTS = env("ARTIFACTS");
const { chromium } = createRequire(env("PLAYWRIGHT_FROM"))("playwright-core");

const CALLER = "+16129782029";
const DAY = 86_400;
const now = Math.floor(Date.now() / 1000);

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}\n    ${String(error && error.stack || error).split("\n").join("\n    ")}`);
  }
}
function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ---- seeding through the real webhook --------------------------------

function fixture(name) {
  return JSON.parse(readFileSync(join(FIXTURES, name), "utf8"));
}

async function postCall(event) {
  const body = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const v0 = createHmac("sha256", KEY).update(`${t}.${body}`).digest("hex");
  const response = await fetch(`${BASE}/webhook/post-call`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "ElevenLabs-Signature": `t=${t},v0=${v0}` },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`post-call answered ${response.status}: ${text}`);
}

function transcription(id, start, outcome, { title, interrupted, name } = {}) {
  const event = fixture("post_call_transcription.docs-example.json");
  const data = event.data;
  data.conversation_id = id;
  data.metadata.start_time_unix_secs = start;
  data.analysis.call_successful = outcome;
  if (title) data.analysis.call_summary_title = title;
  if (name) {
    data.analysis.data_collection_results = {
      first_name: { data_collection_id: "first_name", value: name, rationale: "The caller said so." },
    };
  }
  if (interrupted) data.transcript[1].interrupted = true;
  data.conversation_initiation_client_data.dynamic_variables.system__caller_id = CALLER;
  event.event_timestamp = start + 30;
  return event;
}

async function api(path, token = TOKEN) {
  return fetch(`${BASE}${path}`, { headers: { Authorization: `Bearer ${token}` } });
}

async function waitUntil(what, probe) {
  // Bounded polling for the server's background work; not a timing test.
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

const SEEDED_TIMES = [now - 2 * DAY, now - DAY, now - DAY + 60];
const SEEDED_DAYS = new Set(SEEDED_TIMES.map((t) => new Date(t * 1000).toISOString().slice(0, 10)));

async function seed() {
  await waitUntil("the server to be ready", async () => {
    try { return (await fetch(`${BASE}/ready`)).ok; } catch { return false; }
  });
  await postCall(transcription("conv_browser_1", SEEDED_TIMES[0], "success",
    { title: "Fun fact request", interrupted: true, name: "Angelo" }));
  await postCall(transcription("conv_browser_2", SEEDED_TIMES[1], "failure", { title: "Follow-up call" }));
  const failure = fixture("call_initiation_failure.twilio.docs-example.json");
  failure.data.conversation_id = "conv_browser_failed";
  failure.event_timestamp = SEEDED_TIMES[2];
  await postCall(failure);
  await waitUntil("the caller's memories to be written", async () => {
    const response = await api(`/api/users/${encodeURIComponent(CALLER)}/memories`);
    return response.ok && (await response.json()).length >= 2;
  });
  // Acknowledged, then unusable when processed (no agent id): it fails for good.
  const broken = transcription("conv_browser_broken", SEEDED_TIMES[0], "success");
  delete broken.data.agent_id;
  await postCall(broken);
  await waitUntil("the broken event to fail", async () => {
    const response = await api("/api/events?status=failed");
    return response.ok && (await response.json()).length === 1;
  });
  // The call index is updated as each event is processed, off the webhook's path.
  await waitUntil("the three calls to be indexed", async () => {
    const response = await api("/api/calls");
    return response.ok && (await response.json()).length >= 3;
  });
}

// ---- the browser ------------------------------------------------------

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  await seed();

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
      "--disable-background-networking", "--disable-component-update"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Refused requests (the wrong-token check) are logged by the browser as
  // failed loads; anything else on the console is an error of the page.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
  });
  const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

  try {
    await check("the dashboard shows a sign-in form", async () => {
      await page.goto(`${BASE}/dashboard`);
      await page.locator("#token").waitFor({ state: "visible" });
      assert(await page.locator("#app").isHidden(), "the app is visible before sign-in");
      await shot("01-sign-in");
    });

    await check("a wrong token is refused", async () => {
      await page.fill("#token", "not-the-token");
      await page.click("#login-form button[type=submit]");
      await page.locator("#login-error").waitFor({ state: "visible" });
      const text = await page.textContent("#login-error");
      assert(/refused/i.test(text), `unexpected message: ${text}`);
      assert(await page.locator("#app").isHidden(), "the app opened with a wrong token");
      assert(await page.evaluate(() => sessionStorage.length) === 0, "a wrong token was kept");
      const direct = await api("/api/analytics", "not-the-token");
      assert(direct.status === 401, `the API answered ${direct.status} to a wrong token`);
      await shot("02-wrong-token");
    });

    await check("signing in shows analytics tiles and the calls-per-day chart", async () => {
      await page.fill("#token", TOKEN);
      await page.click("#login-form button[type=submit]");
      await page.locator("#app").waitFor({ state: "visible" });
      await page.waitForFunction(() => document.querySelector("#tile-total").textContent === "3");
      const success = await page.textContent("#tile-success");
      assert(success.trim() === "33 %", `success rate tile shows ${success}`);
      const duration = await page.textContent("#tile-duration");
      assert(duration.trim() === "22 s", `average duration tile shows ${duration}`);
      const bars = await page.locator("#chart svg rect.bar").count();
      assert(bars === SEEDED_DAYS.size, `expected ${SEEDED_DAYS.size} days in the chart, got ${bars}`);
      assert(await page.locator("#chart svg polyline.rate").count() === 1, "no success-rate line");
      assert(await page.evaluate(() => sessionStorage.length) === 1, "the token is not in sessionStorage");
      await page.click("#collected-box summary");
      const collected = await page.locator("#collected tbody tr").allTextContents();
      assert(collected.some((row) => row.includes("first_name") && row.includes("Angelo") && row.includes("1")),
        `collected data shows ${JSON.stringify(collected)}`);
      await shot("03-analytics");
    });

    await check("a banner says an event failed and how to retry it", async () => {
      const banner = page.locator("#failing");
      await banner.waitFor({ state: "visible" });
      const text = await banner.textContent();
      for (const part of ["1 event failed", "conv_browser_broken", "agent_id", "recall replay --failed"]) {
        assert(text.includes(part), `banner lacks ${part}: ${text}`);
      }
      await shot("03b-failing-banner");
    });

    await check("the call list shows title, summary, duration, cost and outcome", async () => {
      const calls = page.locator("#calls li.call");
      await calls.first().waitFor();
      assert(await calls.count() === 3, `expected 3 calls, got ${await calls.count()}`);
      const first = await calls.nth(0).textContent();
      assert(first.includes("Call not connected"), `newest call is not the failure: ${first}`);
      const follow = await calls.nth(1).textContent();
      for (const part of ["Follow-up call", "Duration 22 s", "Cost 296", "Unsuccessful", "Angelo"]) {
        assert(follow.includes(part), `call entry lacks ${part}: ${follow}`);
      }
    });

    await check("searching a caller shows their profile and memories", async () => {
      await page.fill("#phone", CALLER);
      await page.click("#search-form button[type=submit]");
      await page.locator("#user-profile .name").waitFor();
      const profile = await page.textContent("#user-profile");
      assert(profile.includes("Angelo") && profile.includes(CALLER), `profile shows ${profile}`);
      const memories = page.locator("#memories li.memory");
      await memories.first().waitFor();
      const texts = await memories.allTextContents();
      assert(texts.some((t) => t.includes("first_name: Angelo") && t.includes("High") && t.includes("semantic")),
        `no High semantic name memory in ${JSON.stringify(texts)}`);
      assert(texts.some((t) => t.includes("Medium") && t.includes("episodic")),
        `no Medium episodic summary in ${JSON.stringify(texts)}`);
      assert(await page.locator("#memories time").count() >= 2, "memories show no time");
      const title = await page.textContent("#calls-title");
      assert(title.includes(CALLER), `call list is not the caller's: ${title}`);
      await shot("04-caller");
    });

    await check("a transcript marks the interrupted turn", async () => {
      await page.click('#calls button[data-conversation="conv_browser_1"]');
      await page.locator("#call-detail").waitFor({ state: "visible" });
      const turns = page.locator("#transcript li");
      assert(await turns.count() === 3, `expected 3 turns, got ${await turns.count()}`);
      const cut = page.locator("#transcript li.interrupted");
      assert(await cut.count() === 1, `expected 1 interrupted turn, got ${await cut.count()}`);
      const text = await cut.textContent();
      assert(text.includes("Interrupted") && text.includes("fun fact"), `interrupted turn shows ${text}`);
      assert((await page.textContent("#call-title")).includes("Fun fact request"), "wrong call opened");
      await shot("05-transcript");
    });

    await check("a bad phone number is explained, not sent", async () => {
      await page.fill("#phone", "12345");
      await page.click("#search-form button[type=submit]");
      await page.locator("#status").waitFor({ state: "visible" });
      assert((await page.textContent("#status")).includes("E.164"), "no E.164 hint");
    });

    await check("the dashboard fits a phone screen", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.fill("#phone", CALLER);
      await page.click("#search-form button[type=submit]");
      await page.locator("#memories li.memory").first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 1, `the page scrolls sideways by ${overflow}px on a phone`);
      await shot("06-phone");
    });

    await check("signing out forgets the token", async () => {
      await page.click("#sign-out");
      await page.locator("#login").waitFor({ state: "visible" });
      assert(await page.evaluate(() => sessionStorage.length) === 0, "the token is still stored");
      await page.reload();
      await page.locator("#token").waitFor({ state: "visible" });
      assert(await page.locator("#app").isHidden(), "the app opened without a token after reload");
    });

    await check("the page raised no script errors", async () => {
      assert(pageErrors.length === 0, pageErrors.join("\n"));
    });
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (error) {
  failed += 1;
  console.log(`not ok - setup\n    ${error && error.stack || error}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
