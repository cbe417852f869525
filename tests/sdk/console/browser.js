// Drives kmsim's console in headless Chromium (Debian's, through playwright-core) as a user would, and prints one
// JSON report: {"checks": [names passed], "failed": {"check", "detail"} | null, "timings": {...}}.
//
// Settings (environment): KMSIM_ENDPOINT (127.0.0.1:PORT), KMSIM_CHROMIUM (the browser), KMSIM_SCREENSHOTS (a
// folder for the pictures docs/console.md shows), KMSIM_KEY_ID (a key the test made, with automatic rotation).
"use strict";

const { chromium } = require("playwright-core");

const endpoint = "http://" + process.env.KMSIM_ENDPOINT;
const shots = process.env.KMSIM_SCREENSHOTS;
const keyId = process.env.KMSIM_KEY_ID;
const report = { checks: [], failed: null, timings: {} };

function check(name, ok, detail) {
  if (!ok) throw Object.assign(new Error(name), { check: name, detail });
  report.checks.push(name);
}

// With --auth required: the page is refused until it is given an AccessKey, then signs every call with it.
async function signIn(page) {
  await page.goto(endpoint + "/");
  await page.waitForFunction(() => /AccessKey|Signature|IncompleteSignature/.test(document.querySelector("#key-rows")?.textContent || ""));
  check("without an AccessKey the page's calls are refused", true);
  await page.fill("#access-key-id", process.env.KMSIM_ACCESS_KEY_ID);
  await page.fill("#access-key-secret", process.env.KMSIM_ACCESS_KEY_SECRET);
  await page.click("#signin button");
  await page.waitForSelector(`tr[data-key-id="${keyId}"]`);
  check("with the AccessKey given, the page's SigV4-signed calls are answered", true);
  check("the secret does not stay in the form", (await page.inputValue("#access-key-secret")) === "");
}

async function main() {
  if (process.env.KMSIM_ACCESS_KEY_ID) {
    const browser = await chromium.launch({ executablePath: process.env.KMSIM_CHROMIUM, args: ["--no-sandbox"] });
    try { await signIn(await browser.newPage()); } finally { await browser.close(); }
    return;
  }
  const browser = await chromium.launch({ executablePath: process.env.KMSIM_CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(endpoint + "/");
    await page.waitForSelector(`tr[data-key-id="${keyId}"]`);
    report.timings.keysLoadMs = await page.evaluate(() => performance.getEntriesByType("navigation")[0].duration);
    check("the key list shows the key the test made", true);
    check("the simulated clock is shown", /^\d{4}-\d\d-\d\dT/.test(await page.textContent("#now")));
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
    await page.waitForFunction(() => /Encrypt .*Rejected\.Disabled \(409\)/.test(document.querySelector("#audit-rows")?.textContent || ""));
    check("the live audit shows the refused Encrypt", true);
    await page.screenshot({ path: shots + "/refusal.png" });

    // A record opens in its three renderings.
    await page.click("#audit-rows li.error");
    await page.waitForFunction(() => /"eventName": "Encrypt"/.test(document.querySelector("#record-text")?.textContent || ""));
    await page.click("[data-format=cloudtrail]");
    await page.waitForFunction(() => /"eventSource"/.test(document.querySelector("#record-text")?.textContent || ""));
    check("a record opens in its native and CloudTrail renderings", true);

    // Something done outside the page (the test's gRPC call) reaches the live audit too.
    await page.fill("#audit-query", "eventName:DescribeKey not userAgent:Mozilla*");
    await page.click("#audit-filter button");
    await page.waitForFunction(() => document.querySelectorAll("#audit-rows li").length > 0 &&
      !document.querySelector("#audit-rows li.error"));
    check("the live audit shows a call made outside the console", true);


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
    await page.click('#transitions button:text-is("Schedule deletion (7 days)")');
    await page.waitForFunction(() => /deleted in 6 d 23 h|deleted in 7 d 0 h/.test(document.querySelector(".countdown")?.textContent || ""));
    check("a key pending deletion counts down in simulated time", true);
    const deleteAt = new Date(Date.parse(await page.textContent("#now")) + 8 * 86400000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await page.fill("#set-time", deleteAt);
    await page.click("#set-clock button");
    await page.waitForFunction((id) => !document.querySelector(`tr[data-key-id="${id}"]`), keyId);
    check("setting the clock past the deletion date removes the key from the list", true);
    await page.waitForFunction(() => /Key:DeleteKey:ActualDeletion/.test(document.querySelector("#event-rows")?.textContent || "")
      && /Key:DeleteKey:ScheduleDeletion/.test(document.querySelector("#event-rows")?.textContent || ""));
    check("the system events show the deletion scheduled and done", true);
    await page.screenshot({ path: shots + "/deleted.png", fullPage: true });

  } finally {
    await browser.close();
  }
}

main()
  .catch((error) => { report.failed = { check: error.check || "the page", detail: error.detail ?? String(error.stack || error) }; })
  .finally(() => console.log(JSON.stringify(report)));
