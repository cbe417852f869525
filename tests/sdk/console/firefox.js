// Drives kmsim's console in headless Firefox (Debian's firefox-esr, through puppeteer-core over WebDriver BiDi): the
// page's views, its live streams (fetch with a streamed body), the state diagram, a refusal and a year on the clock,
// so the console is known to work in Firefox as well as Chromium. Prints one JSON report as its last line, as
// browser.js does. Settings (environment): KMSIM_ENDPOINT, KMSIM_FIREFOX, KMSIM_SCREENSHOTS, KMSIM_KEY_ID.
"use strict";

const puppeteer = require("puppeteer-core");

const endpoint = "http://" + process.env.KMSIM_ENDPOINT;
const keyId = process.env.KMSIM_KEY_ID;
const { check, walkIn, run } = require("./report.js");

const wait = (page, predicate, ...args) => page.waitForFunction(predicate, { timeout: 30000 }, ...args);

async function walk(page) {
  await page.goto(endpoint + "/");
  await page.waitForSelector(`tr[data-key-id="${keyId}"]`);
  check("Firefox: the key list shows the key the test made", true);
  await wait(page, () => document.querySelector("#live")?.textContent === "● live");
  check("Firefox: the live audit and events stream", true);

  await page.click(`tr[data-key-id="${keyId}"]`);
  await wait(page, () => document.querySelector(".state.current")?.textContent === "Enabled");
  check("Firefox: the state diagram is drawn with Enabled lit",
    await page.$eval("#states svg .node.current text", (text) => text.textContent === "Enabled"));
  const [disable] = await page.$$("xpath/.//div[@id='transitions']/button[text()='Disable']");
  await disable.click();
  await wait(page, () => document.querySelector(".state.current")?.textContent === "Disabled");
  await page.click("button[data-try=Encrypt]");
  await page.waitForSelector("#try-result.error");
  const refusal = await page.$eval("#try-result", (result) => result.textContent);
  check("Firefox: a disabled key's refusal shows its code and status", refusal.startsWith("Rejected.Disabled (409)"), refusal);
  await wait(page, () => /Encrypt .*Rejected\.Disabled \(409\)/.test(document.querySelector("#audit-rows")?.textContent || ""));
  check("Firefox: the refused Encrypt streams into the live audit", true);

  const [enable] = await page.$$("xpath/.//div[@id='transitions']/button[text()='Enable']");
  await enable.click();
  await wait(page, () => document.querySelector(".state.current")?.textContent === "Enabled");
  await page.click("button[data-advance='31536000']");
  await wait(page, () => document.querySelectorAll("#versions li.rotated-on-schedule").length >= 4);
  check("Firefox: a year on the clock shows the scheduled rotations", true);
  await page.screenshot({ path: process.env.KMSIM_SCREENSHOTS + "/firefox.png" });
}

async function main() {
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: process.env.KMSIM_FIREFOX, headless: true });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });
    await walkIn(page, walk, (shown) => shown.evaluate(() => ({ live: document.querySelector("#live")?.textContent,
      key: document.querySelector("#key-title")?.textContent })));
  } finally {
    await browser.close();
  }
}

run(main);
