// The approver console in a real Chromium, driven by Playwright
// (playwright-core with Debian's /usr/bin/chromium). Run by
// crates/cli/tests/e2e/console.rs, which starts `aifn serve`, makes the
// keys and uploads the versions, then checks what this prints: one JSON
// object of observations. Screenshots go to SHOTS (a temporary directory, or docs/console/).
//
// usage: node console.mjs URL SETTINGS_JSON
import { chromium } from "playwright-core";

const [base, settingsJson] = process.argv.slice(2);
const s = JSON.parse(settingsJson);
const out = {};
const shots = s.shots;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const alerts = [];

async function context() {
  const ctx = await browser.newContext({
    timezoneId: "America/New_York",
    viewport: { width: 1280, height: 900 },
  });
  ctx.on("page", (p) => p.on("dialog", (d) => { alerts.push(d.message()); d.dismiss(); }));
  return ctx;
}

async function signIn(page, key, { keyboard = false } = {}) {
  await page.goto(`${base}/console/`);
  if (keyboard) {
    await page.getByLabel("API key").focus();
    await page.keyboard.type(key);
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
  } else {
    await page.getByLabel("API key").fill(key);
    await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign in" }).click()]);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

const pwned = (page) => page.evaluate(() => window.__pwned ?? null);

try {
  // An agent key cannot sign in.
  {
    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, s.agent);
    out.agent_sign_in_url = new URL(page.url()).pathname;
    out.agent_sign_in_alert = await page.getByRole("alert").textContent();
    out.agent_cookies = (await ctx.cookies()).filter((c) => c.name === "aifn_session").length;
    await shot(page, "sign-in");
    await ctx.close();
  }

  // The approver reviews, tests, approves and rejects.
  {
    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, s.approver, { keyboard: true });
    out.approver_landing = new URL(page.url()).pathname;
    const cookie = (await ctx.cookies()).find((c) => c.name === "aifn_session");
    out.session_cookie = cookie && { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path };
    out.key_in_storage = await page.evaluate((k) =>
      document.cookie.includes(k) || JSON.stringify(localStorage).includes(k) || JSON.stringify(sessionStorage).includes(k), s.approver);
    out.pending_rows = await page.locator("main table tbody tr").allTextContents();
    await shot(page, "pending");

    await page.getByRole("link", { name: s.review, exact: true }).click();
    out.version_heading = await page.getByRole("heading", { level: 1 }).textContent();
    out.has_report = await page.getByRole("heading", { name: "Inspection report" }).isVisible();
    out.source_text = await page.locator("table.source").textContent();
    out.description_text = await page.locator("dd.description").textContent();
    out.pending_badge = await page.locator(".badge").first().textContent();
    const t = page.locator("main time").first();
    out.time_text = await t.textContent();
    out.time_title = await t.getAttribute("title");
    out.time_datetime = await t.getAttribute("datetime");
    out.pwned_after_view = await pwned(page);
    await shot(page, "version");

    // A test run.
    await page.getByLabel("Test input (JSON)").fill(JSON.stringify({ text: "from the console" }));
    await page.getByRole("button", { name: "Run test" }).click();
    out.test_result = await page.locator("section.result").textContent();
    await shot(page, "test-run");

    // A POST without the CSRF token, and one from another origin.
    const action = `${base}/console/functions/${s.review}/versions/1/decide`;
    const noCsrf = await page.request.post(action, {
      form: { action: "approve", sha256: "x", confirm: "yes", notes: "forged" },
      headers: { Origin: base },
    });
    out.no_csrf_status = noCsrf.status();
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const foreign = await page.request.post(action, {
      form: { csrf, action: "approve", sha256: "x", confirm: "yes", notes: "forged" },
      headers: { Origin: "http://evil.example" },
    });
    out.foreign_origin_status = foreign.status();

    // Approve with notes holding markup and script.
    await page.getByLabel(/I inspected the module/).check();
    await page.getByLabel("Notes").fill(s.payload);
    await page.getByRole("button", { name: "Approve" }).click();
    out.after_approve_badge = await page.locator("p.state .badge").textContent();
    out.notes_cell = await page.locator("td.notes").first().textContent();
    out.pwned_after_approve = await pwned(page);
    out.revoke_button = await page.getByRole("button", { name: "Revoke" }).count();
    await shot(page, "approved");

    // The agent's call over the API now succeeds.
    const call = await fetch(`${base}/v1/functions/${s.review}/invoke`, {
      method: "POST",
      headers: { Authorization: `Bearer ${s.agent}`, "Content-Type": "application/json" },
      body: JSON.stringify({ input: { text: "agent" } }),
    });
    out.agent_call_status = call.status;
    out.agent_call_output = (await call.json()).output;

    // Reject another.
    await page.goto(`${base}/console/pending`);
    await page.getByRole("link", { name: s.reject, exact: true }).click();
    await page.getByLabel(/I inspected the module/).check();
    await page.getByLabel("Notes").fill("does not do what it says");
    await page.getByRole("button", { name: "Reject" }).click();
    out.after_reject_badge = await page.locator("p.state .badge").textContent();

    await page.goto(`${base}/console/functions`);
    out.functions_text = await page.locator("main table").textContent();
    await shot(page, "functions");
    await page.goto(`${base}/console/audit?function=${s.review}`);
    out.audit_rows = await page.locator("main table tbody tr").count();
    out.audit_text = await page.locator("main table").textContent();
    await shot(page, "audit");
    await page.locator("main table tbody tr a").first().click();
    out.record_text = await page.locator("pre.json").textContent();

    // Sign out ends the session, on the server too.
    const token = (await ctx.cookies()).find((c) => c.name === "aifn_session").value;
    await page.getByRole("button", { name: "Sign out" }).click();
    out.after_sign_out = new URL(page.url()).pathname;
    const reuse = await fetch(`${base}/console/pending`, { headers: { Cookie: `aifn_session=${token}` }, redirect: "manual" });
    out.reused_session_status = reuse.status;
    out.reused_session_location = reuse.headers.get("location");
    await ctx.close();
  }

  // The author sees no approve button for their own version, and a
  // hand-made approve request is refused by the service.
  {
    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, s.author);
    await page.goto(`${base}/console/functions/${s.own}/versions/1`);
    out.author_sees_heading = await page.getByRole("heading", { level: 1 }).textContent();
    out.author_approve_buttons = await page.getByRole("button", { name: "Approve" }).count();
    const csrf = await page.locator("input[name=csrf]").first().inputValue();
    const sha = s.own_sha256;
    const forged = await page.request.post(`${base}/console/functions/${s.own}/versions/1/decide`, {
      form: { csrf, action: "approve", sha256: sha, confirm: "yes", notes: "my own" },
      headers: { Origin: base },
    });
    out.author_forged_status = forged.status();
    out.author_forged_text = await forged.text();
    await ctx.close();
  }

  // The admin edits an agent's policy.
  {
    const ctx = await context();
    const page = await ctx.newPage();
    await signIn(page, s.admin);
    await page.goto(`${base}/console/agents`);
    await page.getByRole("link", { name: "bot", exact: true }).click();
    await page.getByLabel(/Policy \(JSON/).fill(JSON.stringify({ allow: [s.review], deny: [], budget: { calls_per_hour: 50 } }));
    await page.getByRole("button", { name: "Save policy" }).click();
    out.policy_page = await page.locator("main").textContent();
    await shot(page, "agent");
    await ctx.close();
  }
  out.alerts = alerts;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
