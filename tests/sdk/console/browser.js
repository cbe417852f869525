// Drives kmsim's console in headless Chromium (Debian's, through playwright-core) as a user would, and prints one
// JSON report as its last line: {"checks": [names passed], "failed": {"check", "detail"} | null, "timings": {...}}.
//
// Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_CHROMIUM (the browser), KMSIM_SCREENSHOTS (a
// folder for the pictures docs/console.md shows), KMSIM_SCENARIO (which walk), KMSIM_KEY_ID (a key the test made).
//
// The walk asks the test for things only it can do (a call from the CLI, a server restart) by printing
// `kmsim:<request>` and reading one line back once it is done.
"use strict";

const { chromium } = require("playwright-core");
const readline = require("readline");

const endpoint = "http://" + process.env.KMSIM_ENDPOINT;
const shots = process.env.KMSIM_SCREENSHOTS;
const keyId = process.env.KMSIM_KEY_ID;
const { report, check, walkIn, run } = require("./report.js");

const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(request) {
  console.log("kmsim:" + request);
  const { value, done } = await answers.next();
  if (done || value !== "done") throw new Error(`the test did not do ${request}: ${value}`);
}

const shows = (page, selector, pattern) =>
  page.waitForFunction(([s, p]) => new RegExp(p).test(document.querySelector(s)?.textContent || ""), [selector, pattern.source]);
const isLive = (page) => page.waitForFunction(() => document.querySelector("#live")?.textContent === "● live");

// With --auth required: the page is refused until it is given an AccessKey, then signs every call with it.
async function signIn(page) {
  await page.goto(endpoint + "/");
  await shows(page, "#key-rows", /AccessKey|Signature|IncompleteSignature/);
  check("without an AccessKey the page's calls are refused", true);
  await page.fill("#access-key-id", process.env.KMSIM_ACCESS_KEY_ID);
  await page.fill("#access-key-secret", process.env.KMSIM_ACCESS_KEY_SECRET);
  await page.click("#signin button");
  await page.waitForSelector(`tr[data-key-id="${keyId}"]`);
  check("with the AccessKey given, the page's SigV4-signed calls are answered", true);
  check("the secret does not stay in the form", (await page.inputValue("#access-key-secret")) === "");
  await isLive(page);
  check("the live views open signed", true);
}

async function walk(page) {
  await page.goto(endpoint + "/");
  await page.waitForSelector(`tr[data-key-id="${keyId}"]`);
  check("the key list shows the key the test made", true);
  check("the simulated clock is shown", /^\d{4}-\d\d-\d\dT/.test(await page.textContent("#now")));
  await isLive(page);
  check("the live audit and events are open", true);
  await page.screenshot({ path: shots + "/keys.png" });

  await page.click(`tr[data-key-id="${keyId}"]`);
  await page.waitForSelector(".state.current");
  check("the key page lights Enabled", (await page.textContent(".state.current")) === "Enabled");
  await page.click('#transitions button:text-is("Disable")');
  await page.waitForFunction(() => document.querySelector(".state.current")?.textContent === "Disabled");
  check("Disable moves the lit state to Disabled", true);
  await page.fill("#try-input", "hello");
  await page.click("button[data-try=Encrypt]");
  await page.waitForSelector("#try-result.error");
  const refusal = await page.textContent("#try-result");
  check("a disabled key's refusal shows its code and status", refusal.startsWith("Rejected.Disabled (409)"), refusal);
  await shows(page, "#record-text", /"errorCode": "Rejected.Disabled"/);
  check("the refused call's record opens beside it", true);
  await shows(page, "#audit-rows", /Encrypt .*Rejected\.Disabled \(409\)/);
  check("the live audit shows the refused Encrypt", true);
  await page.screenshot({ path: shots + "/refusal.png" });

  await page.click("[data-format=cloudtrail]");
  await shows(page, "#record-text", /"eventSource"/);
  await page.click("[data-format=actiontrail]");
  await shows(page, "#record-text", /"acsRegion"/);
  check("a record opens in its native, ActionTrail and CloudTrail renderings", true);

  // A call from the CLI while the page watches streams in: the view was open before the call was made.
  await page.fill("#audit-query", "frontend:grpc and eventName:DescribeKey");
  await page.click("#audit-filter button");
  await isLive(page);
  await ask("cli-describe");
  await page.waitForFunction(() => /DescribeKey .* ok · grpc · kmsim-cli/.test(document.querySelector("#audit-rows")?.textContent || ""));
  check("the live audit shows a call made from the CLI meanwhile, named by its front end", true);

  // A reload keeps the open key and the query, and the records stored so far.
  await page.reload();
  await page.waitForFunction(() => document.querySelector(".state.current")?.textContent === "Disabled");
  check("a reload reopens the key that was open", page.url().includes("#key=" + keyId));
  check("a reload keeps the audit query", (await page.inputValue("#audit-query")) === "frontend:grpc and eventName:DescribeKey");
  await shows(page, "#audit-rows", /DescribeKey .* ok · grpc · kmsim-cli/);
  check("a reload shows what was recorded before it", true);

  // A server restart: the page reconnects by itself and loses nothing that was stored.
  await page.fill("#audit-query", "eventName:Encrypt or eventName:DescribeKey");
  await page.click("#audit-filter button");
  await isLive(page);
  const describes = () => page.$$eval("#audit-rows li", (items) => items.filter((item) => /DescribeKey .* ok · grpc/.test(item.textContent)).length);
  await shows(page, "#audit-rows", /Encrypt .*Rejected\.Disabled \(409\)/);
  const describedBefore = await describes();
  await ask("restart");
  await isLive(page);
  await shows(page, "#audit-rows", /Encrypt .*Rejected\.Disabled \(409\)/);
  check("after a server restart the page reconnects and shows what was stored before it", true);
  await ask("cli-describe");
  await page.waitForFunction(([n]) => [...document.querySelectorAll("#audit-rows li")]
    .filter((item) => /DescribeKey .* ok · grpc/.test(item.textContent)).length === n + 1, [describedBefore]);
  check("and streams what happens after it", true);

  await page.click('#transitions button:text-is("Enable")');
  await page.waitForFunction(() => document.querySelector(".state.current")?.textContent === "Enabled");
  const before = await page.$$eval("#versions li", (items) => items.length);
  await page.click("button[data-advance='31536000']");
  await page.waitForFunction((n) => document.querySelectorAll("#versions li").length > n + 3, before);
  const versions = await page.$$eval("#versions li", (items) => items.map((item) => item.textContent));
  check("a year on the clock shows the scheduled rotations", versions.filter((v) => v.includes("rotated on schedule")).length >= 4,
    versions);
  await page.screenshot({ path: shots + "/rotations.png", fullPage: true });

  // Scheduling deletion counts down in simulated time; setting an instant past it deletes the key.
  await page.click('#transitions button:text-is("Schedule deletion")');
  await shows(page, ".countdown", /deleted in 6 d 23 h|deleted in 7 d 0 h/);
  check("a key pending deletion counts down in simulated time", true);
  const deleteAt = new Date(Date.parse(await page.textContent("#now")) + 8 * 86400000).toISOString().replace(/\.\d{3}Z$/, "Z");
  await page.fill("#set-time", deleteAt);
  await page.click("#set-clock button");
  await page.waitForFunction((id) => !document.querySelector(`tr[data-key-id="${id}"]`), keyId);
  check("setting the clock past the deletion date removes the key from the list", true);
  await page.waitForFunction(() => /Key:DeleteKey:ActualDeletion/.test(document.querySelector("#event-rows")?.textContent || "")
    && /Key:DeleteKey:ScheduleDeletion/.test(document.querySelector("#event-rows")?.textContent || ""));
  check("the system events show the deletion scheduled and done, as they happen", true);
  await page.screenshot({ path: shots + "/deleted.png", fullPage: true });

  // Signing and MACs in the try-it panel.
  for (const [spec, sign, verify] of [["EC_P256", "Sign", "Verify"], ["HMAC_256", "GenerateMac", "VerifyMac"]]) {
    await page.selectOption("#spec", spec);
    await page.click("#create-key button");
    await page.waitForFunction((s) => (document.querySelector("#key-title")?.textContent || "").includes(s), spec);
    await page.fill("#try-input", "a message");
    await page.click(`button[data-try=${sign}]`);
    await page.waitForSelector("#try-result.success");
    await page.click(`button[data-try=${verify}]`);
    await shows(page, "#try-result", /: valid$/);
    check(`try it signs or MACs with ${spec} and verifies`, true);
  }
}

// The lesson, step by step, in a fresh browser (nothing remembered).
async function lesson(page) {
  await page.goto(endpoint + "/");
  await isLive(page);
  const steps = await page.$$eval("#lesson-steps li", (items) => items.length);
  for (let step = 1; step <= steps; step++) {
    await page.click("#lesson-do");
    await page.waitForFunction((n) => document.querySelectorAll("#lesson-steps li.done").length === n, step);
    if (step === 5) await page.screenshot({ path: shots + "/lesson.png" });
  }
  const results = await page.$$eval("#lesson-steps li.done .result", (items) => items.map((item) => item.textContent));
  report.lesson = results;
  check("the lesson runs to its end", /Lesson complete/.test(await page.textContent("#lesson-steps")), results);
  check("the lesson meets Rejected.Disabled", results[4] === "Refused: Rejected.Disabled (409).", results[4]);
  check("the lesson finds the refusal in the trail", /^1 refused call on record/.test(results[5]), results[5]);
  check("the lesson sees the deletion event", results[8].startsWith("Key:DeleteKey:ActualDeletion at "), results[8]);
  check("the lesson ends with the key gone", /Forbidden\.KeyNotFound \(404\)/.test(results[9]), results[9]);
  await page.reload();
  check("the lesson's progress survives a reload", /Lesson complete/.test(await page.textContent("#lesson-steps")));
}

// Page loads over a large store, from the Performance API: the navigation, and when the page marked its key list
// and its audit trail drawn (marks `kmsim:keys`, `kmsim:audit`), in ms from the start of navigation.
async function load(page) {
  for (const round of [1, 2, 3]) {
    await page.goto(endpoint + "/console/");
    await page.waitForFunction(() => performance.getEntriesByName("kmsim:keys").length && performance.getEntriesByName("kmsim:audit").length);
    report.timings["round" + round] = await page.evaluate(() => ({
      navigationMs: performance.getEntriesByType("navigation")[0].duration,
      keysDrawnMs: performance.getEntriesByName("kmsim:keys")[0].startTime,
      auditDrawnMs: performance.getEntriesByName("kmsim:audit")[0].startTime,
      keysTotal: document.querySelector("#keys-count").textContent,
      recordsShown: document.querySelectorAll("#audit-rows li").length,
    }));
  }
  check("the key list and the trail are drawn over the large store", report.timings.round3.recordsShown > 0, report.timings);
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.KMSIM_CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const scenario = { walk, lesson, load, "sign-in": signIn }[process.env.KMSIM_SCENARIO];
    await walkIn(page, scenario, (shown) => shown.evaluate(() => ({ live: document.querySelector("#live")?.textContent,
      audit: [...document.querySelectorAll("#audit-rows li")].slice(0, 8).map((item) => item.textContent) })));
  } finally {
    await browser.close();
  }
}

run(main);
