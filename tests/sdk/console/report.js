// What browser.js and firefox.js share: the checks they pass, and the one JSON report each prints as its last line,
// {"checks": [names passed], "failed": {"check", "detail", "shown"} | null, "timings": {...}}.
"use strict";

const report = { checks: [], failed: null, timings: {} };

function check(name, ok, detail) {
  if (!ok) throw Object.assign(new Error(name), { check: name, detail });
  report.checks.push(name);
}

// Runs `walk(page)` in `page`; on a failed check, notes what the page showed (`shown(page)`) for the test's message.
async function walkIn(page, walk, shown) {
  try {
    await walk(page);
  } catch (error) {
    error.shown = await shown(page).catch(() => null);
    throw error;
  }
}

// Runs `main` and prints the report, whatever happened.
function run(main) {
  main()
    .catch((error) => {
      report.failed = { check: error.check || "the page", detail: error.detail ?? String(error.stack || error), shown: error.shown };
    })
    .finally(() => { console.log(JSON.stringify(report)); process.exit(0); });
}

module.exports = { report, check, walkIn, run };
