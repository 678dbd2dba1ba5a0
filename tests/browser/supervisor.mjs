// Drives the supervisor page of a running agent in the system's headless Chromium.
// Spawned by agent/tests/page_browser.rs, which owns the agent and the pty scanners.
//
//   node supervisor.mjs URL ARTIFACT_DIR
//
// Talks to the Rust test through stdout, one word a line:
//   "step ready"       both station tiles are shown, nobody on duty: send the scans now
//   "step stop-agent"  the scans showed up live: stop the agent now
//   "step done"        every check passed
// Every wait has a deadline; a failed check prints "FAIL: …" on stderr and exits 1.
// Never downloads a browser: Chromium is /usr/bin/chromium (or $BOBBIN_CHROMIUM).

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [url, artifacts] = process.argv.slice(2);
if (!url || !artifacts) {
  console.error("usage: node supervisor.mjs URL ARTIFACT_DIR");
  process.exit(2);
}
const TOKEN = new URL(url).searchParams.get("token");
const WAIT = 15_000;

const step = (s) => console.log(`step ${s}`);
const fail = (msg) => {
  throw new Error(msg);
};
const tile = (page, id) => page.locator(`#stations > li[data-station="${id}"]`);

// Waits for a predicate evaluated in the page, naming what it waited for on timeout.
async function until(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT, polling: 100 });
  } catch (e) {
    const body = await page.locator("body").innerText().catch(() => "?");
    fail(`timed out after ${WAIT} ms waiting for ${what}; the page shows:\n${body}`);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.BOBBIN_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  chromiumSandbox: false, // --no-sandbox: the tests run as root
  args: [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  timeout: 30_000,
});
let code = 0;
try {
  // Playwright gives every context a fresh profile (its own --user-data-dir).
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);

  // Offline: nothing but the agent itself may be fetched.
  const origin = new URL(url).origin;
  const foreign = [];
  const polls = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(origin)) foreign.push(r.url());
    if (new URL(r.url()).pathname === "/api/status") polls.push(r.headers()["authorization"] ?? null);
  });
  let navigations = 0;
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) navigations++;
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(url, { waitUntil: "load" });

  // 1. The page loads and shows both configured stations, live, in Chinese.
  await until(page, "both station tiles and a live status", () =>
    document.querySelector('#stations > li[data-station="sew-01"]') &&
    document.querySelector('#stations > li[data-station="sew-02"]') &&
    document.querySelector("#conn")?.dataset.conn === "live");
  if ((await page.locator("html").getAttribute("lang")) !== "zh-CN") fail("default language is not zh-CN");
  if ((await page.locator("#stations-h").innerText()) !== "工位") fail("the stations heading is not Chinese");
  const before = await tile(page, "sew-01").getAttribute("data-state");
  if (before !== "idle") fail(`sew-01 starts ${before}, expected idle (nobody on duty)`);
  if (!(await tile(page, "sew-01").locator('[data-field="worker"]').innerText()).includes("无人在岗"))
    fail("sew-01 does not say nobody is on duty");
  if (TOKEN && polls[0] !== `Bearer ${TOKEN}`)
    fail(`the poll did not pass the page's token on as a bearer header: ${polls[0]}`);
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  step("ready");

  // 2. The scans show up without a reload: W0042 on duty at sew-01 with the bundle's 12
  //    pieces, and sew-02's refused badge turns its tile red.
  await until(page, "W0042 on duty at sew-01 with 12 pieces today", () => {
    const t = document.querySelector('#stations > li[data-station="sew-01"]');
    return t && t.dataset.state === "ok" &&
      t.querySelector('[data-field="worker"]')?.textContent.includes("W0042") &&
      t.querySelector('[data-field="pieces"] b')?.textContent.trim() === "12";
  });
  await until(page, "sew-02 to show its refused scan", () => {
    const t = document.querySelector('#stations > li[data-station="sew-02"]');
    return t && t.dataset.state === "alert" &&
      t.querySelector('[data-field="outcome"]')?.dataset.outcome === "unknown-worker";
  });
  if (!(await page.evaluate(() => window.__sameDocument === true)) || navigations !== 1)
    fail(`the page was reloaded (${navigations} navigations) instead of refreshing live`);
  const outcomeZh = await tile(page, "sew-02").locator('[data-field="outcome"]').innerText();
  if (outcomeZh !== "未知员工") fail(`outcome not translated to Chinese: ${outcomeZh}`);
  if (await page.locator("#sync").getAttribute("data-state") !== "not-configured") fail("sync panel does not say not configured");
  if (await page.locator('#devices tr[data-device="scan-1"]').getAttribute("data-state") !== "connected")
    fail("scan-1 is not listed as connected");
  if (TOKEN && polls.some((a) => a !== `Bearer ${TOKEN}`)) fail("a poll went without the bearer token");
  if (await page.locator("#machines-panel").isVisible()) fail("the machines panel shows though MQTT is off");

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, "supervisor.png"), fullPage: true });

  // 3. The language switch: labels and outcome codes in English, <html lang> follows, and
  //    the choice survives a reload.
  await page.locator("#lang-toggle").click();
  await until(page, "English labels", () =>
    document.documentElement.lang === "en" &&
    document.querySelector("#stations-h")?.textContent === "Stations");
  const outcomeEn = await tile(page, "sew-02").locator('[data-field="outcome"]').innerText();
  if (outcomeEn !== "unknown worker") fail(`outcome not translated to English: ${outcomeEn}`);
  if ((await page.locator("#lang-toggle").innerText()) !== "中文") fail("the toggle does not offer Chinese back");
  await page.screenshot({ path: join(artifacts, "supervisor-en.png"), fullPage: true });
  await page.reload({ waitUntil: "load" });
  await until(page, "English kept after a reload", () =>
    document.documentElement.lang === "en" &&
    document.querySelector('#stations > li[data-station="sew-01"]') !== null);

  // 4. The agent goes away: the page says offline and when it last heard from it.
  const pageHtml = await (await context.request.get(`${origin}/`)).text();
  step("stop-agent");
  await until(page, "the offline notice", () => {
    const c = document.querySelector("#conn");
    return c?.dataset.conn === "offline" && /^offline \/ last updated \d\d:\d\d:\d\d$/.test(c.textContent);
  });
  if (await tile(page, "sew-01").count() !== 1) fail("the last known stations vanished when offline");
  await page.screenshot({ path: join(artifacts, "supervisor-offline.png"), fullPage: true });

  // 5. Everything the live run cannot reach cheaply, from a fixed report on a tablet in
  //    portrait: open unit, inspection, a missing device, a backlog with an error, a disk alarm.
  await fixture(browser, origin, pageHtml, join(artifacts, "supervisor-tablet.png"));

  if (foreign.length) fail(`the page fetched something other than the agent: ${foreign.join(", ")}`);
  if (errors.length) fail(`script errors on the page: ${errors.join("; ")}`);
  step("done");
} catch (e) {
  console.error(`FAIL: ${e && e.message ? e.message : e}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);

async function fixture(browser, origin, html, shot) {
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  const station = (o) => ({
    team: null, worker: null, since_ms: null, process: null, process_fixed: false, timing: "consecutive",
    open_unit: null, inspection: null, last_scan_ms: null, last_outcome: null, last_message: null,
    worker_pieces_today: null, ...o,
  });
  const device = (o) => ({
    kind: "serial", state: "connected", message: null, port: null, since_utc: iso(now - 3_600_000),
    last_reading_utc: iso(now - 60_000), readings: 312, rejected: 0, rejected_by_reason: {}, last_reject: null,
    connects: 1, ...o,
  });
  const report = {
    agent: { id: "ws-dongguan-07", version: "0.1.0", journal_id: "4fdb6d3223e1bc323d60f600f0a8258f",
      started: iso(now - 26_000_000), uptime_s: 26_000 },
    stations: [
      station({ station: "cut-01", kind: "cut-inspection", team: "C", worker: "W0107", since_ms: now - 7_200_000,
        process: "cut-check", timing: "two-scans", devices: ["rfid-1"],
        inspection: { trace_key: "FZWS0000012611234419001B7Q2K", order: "PO-9", pieces: 40, score: 12.5, passed: 3, failed: 1 },
        last_scan_ms: now - 40_000, last_outcome: "ok", last_message: "inspection draft opened", worker_pieces_today: 80 }),
      station({ station: "sew-03", kind: "sewing", team: "A", worker: "W0042", since_ms: now - 9_000_000,
        process: "attach-collar", process_fixed: true, timing: "two-scans", devices: ["scan-3"],
        open_unit: { trace_key: "FZWS0000012611234419004HX9PZ", order: "PO-7", process: "attach-collar", start_ms: now - 420_000, pieces: 12 },
        last_scan_ms: now - 420_000, last_outcome: "duplicate", last_message: "already counted", worker_pieces_today: 236 }),
      station({ station: "iron-01", kind: "ironing", team: "D", worker: "W0051", since_ms: now - 3_000_000,
        process: "press", process_fixed: true, devices: ["scan-4"],
        last_scan_ms: now - 900_000, last_outcome: "ok", last_message: "ok", worker_pieces_today: 150 }),
      station({ station: "qc-01", kind: "qc", team: "Q", worker: "W0060", since_ms: now - 5_000_000, devices: [],
        last_scan_ms: now - 20_000, last_outcome: "conflict", last_message: "bundle claimed by W0042 at sew-03",
        worker_pieces_today: 96 }),
      station({ station: "pack-01", kind: "packing", team: "P", process: null, devices: [] }),
    ],
    devices: [
      device({ id: "rfid-1", kind: "rfid-serial", port: "/dev/ttyUSB0", readings: 4821 }),
      device({ id: "scan-3", port: "/dev/ttyACM0" }),
      device({ id: "scan-4", state: "missing", message: "/dev/serial/by-id/usb-Honeywell_Scanning-if00 not found",
        since_utc: iso(now - 600_000), last_reading_utc: iso(now - 900_000), rejected: 3,
        rejected_by_reason: { oversize: 3 },
        last_reject: { reason: "oversize", detail: "", time_utc: iso(now - 1_000_000), bytes_hex: "41", len: 5000 } }),
    ],
    journal: { size_bytes: 52_428_800, records: 120_345, records_today: 2_345, rejects: 7, upload_refusals: 2, writer_alive: true },
    sync: {
      state: "backing-off", message: "platform unreachable", last_success: iso(now - 3_700_000),
      last_error: { at: iso(now - 5_000), message: "connect: connection refused (127.0.0.1:8080)" },
      retry_at: iso(now + 4_000), in_flight: 0, backlog: { unsent: 1234, oldest_unsent_ms: now - 3_720_000 },
      oldest_unsent_age_s: 3720, sources: [], counters: {},
    },
    disk: { state: "alarm", message: "free space 312 MB below the 500 MB floor (journal.min_free_mb)" },
    machines: {
      broker: "embedded mqtt://0.0.0.0:1883", embedded: true, connected: true, sessions_lost: 1, last_error: null,
      received: 51_234, stored: 51_200, duplicates: 30, rejects: 4, alerts: 2, sparkplug_gaps: 0, rebirths_requested: 0,
      machines: {
        "ir-1": { last_message_ms: now - 10_000, readings: 20_100, duplicates: 0, alerts: 2, rejects: 4 },
        "sm-9": { last_message_ms: now - 3_600_000, readings: 31_100, duplicates: 30, alerts: 0, rejects: 0 },
      },
    },
  };
  const context = await browser.newContext({
    viewport: { width: 768, height: 1024 }, deviceScaleFactor: 1, locale: "zh-CN", timezoneId: "Asia/Shanghai",
  });
  try {
    await context.route("**/*", (route) => {
      const u = new URL(route.request().url());
      if (u.origin === origin && u.pathname === "/")
        return route.fulfill({ status: 200, contentType: "text/html; charset=utf-8", body: html });
      if (u.origin === origin && u.pathname === "/api/status")
        return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(report) });
      return route.abort();
    });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${origin}/`, { waitUntil: "load" });
    await until(page, "the fixture's five tiles", () => document.querySelectorAll("#stations > li[data-station]").length === 5);
    const states = await page.$$eval("#stations > li[data-station]", (ts) =>
      Object.fromEntries(ts.map((t) => [t.dataset.station, t.dataset.state])));
    const want = { "cut-01": "ok", "sew-03": "ok", "iron-01": "alert", "qc-01": "alert", "pack-01": "idle" };
    if (JSON.stringify(states) !== JSON.stringify(want))
      fail(`tile states ${JSON.stringify(states)}, expected ${JSON.stringify(want)}`);
    const text = async (sel) => (await page.locator(sel).innerText()).trim();
    if (!(await text('li[data-station="iron-01"] [data-field="reason"]')).includes("scan-4"))
      fail("iron-01 does not name its missing device");
    if (!(await text('li[data-station="sew-03"] [data-field="open-unit"]')).includes("FZWS0000012611234419004HX9PZ"))
      fail("sew-03 does not show its open unit");
    if ((await text('li[data-station="qc-01"] [data-field="outcome"]')) !== "冲突：已被他人领取")
      fail("the conflict outcome is not translated");
    if ((await text('#sync [data-field="backlog"]')).replace(/\D/g, "") !== "1234") fail("backlog not shown");
    if (!(await text('#sync [data-field="oldest-unsent"]')).includes("1 小时 2 分")) fail("oldest unsent age not shown");
    if (!(await text('#sync [data-field="last-error"]')).includes("connection refused")) fail("last sync error not shown");
    const disk = page.locator('#disk[data-state="alarm"]');
    if (!(await disk.innerText()).includes("312 MB")) fail("disk alarm message not shown");
    if ((await disk.evaluate((e) => getComputedStyle(e).color)) !== "rgb(179, 38, 30)") fail("disk alarm is not red");
    if (await page.locator('#devices tr[data-device="scan-4"]').getAttribute("data-state") !== "missing")
      fail("scan-4 not listed as missing");
    if (!(await page.locator("#machines-panel").isVisible())) fail("the machines panel is hidden");
    if (await page.locator("#broker").getAttribute("data-state") !== "ok") fail("the broker is not shown connected");
    if (!(await text('#broker [data-field="sessions-lost"]')).includes("会话丢失 1 次"))
      fail("the lost MQTT session is not shown");
    const machineStates = await page.$$eval("#machines tr[data-machine]", (rs) =>
      rs.map((r) => `${r.dataset.machine}:${r.dataset.state}`).join(","));
    if (machineStates !== "ir-1:live,sm-9:quiet") fail(`machine rows ${machineStates}`);
    if ((await text('#machines tr[data-machine="ir-1"] .badge.alert')) !== "2") fail("ir-1's alerts are not flagged");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    if (overflow) fail("the page scrolls sideways on a 768 px tablet");
    await page.screenshot({ path: shot, fullPage: true });
    if (errors.length) fail(`script errors on the fixture page: ${errors.join("; ")}`);
  } finally {
    await context.close();
  }
}
