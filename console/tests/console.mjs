// The console in a real browser (Chromium, driven by playwright-core), against a running gateway.
//
// Environment:
//   CONSOLE_URL     http://127.0.0.1:PORT/ui/ (the management listener)
//   ADMIN_TOKEN     the admin token
//   BEARER_TOKEN    a valid JWT for the server `guarded`
//   READ_ONLY_TOKEN the read-only token
//   SCREENSHOT_DIR  where screenshots go: one per failed step, and playground.png
//   CHROMIUM        the browser (default /usr/bin/chromium)
//
// The gateway serves `guarded` (a jwt policy), `open` (no chain, in the product `team`,
// which needs approval), both with the tools `echo` and `whoami`, and `docs` with versions v1
// (the default) and v2.
// Each step prints `ok <step>` or `FAIL <step>: <reason>`; the exit code is 1 if any failed.

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return v;
};

const consoleUrl = env('CONSOLE_URL');
const adminToken = env('ADMIN_TOKEN');
const bearerToken = env('BEARER_TOKEN');
const readOnlyToken = env('READ_ONLY_TOKEN');
const shots = env('SCREENSHOT_DIR');
const executablePath = env('CHROMIUM', '/usr/bin/chromium');
mkdirSync(shots, { recursive: true });

const WAIT = 30_000;
const subscriber = `console-${Date.now()}@example.com`;
const echoed = 'Hello from the console';

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
const page = await context.newPage();
page.setDefaultTimeout(WAIT);

// What the page itself reports: a script error, or something the CSP blocked.
const pageProblems = [];
page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) pageProblems.push(`blocked: ${m.text()}`);
});

let failures = 0;
async function step(name, run) {
  try {
    await run();
    console.log(`ok ${name}`);
    // A screenshot an earlier run left for this step no longer says anything.
    rmSync(join(shots, `${name}.png`), { force: true });
  } catch (e) {
    failures += 1;
    const reason = (e instanceof Error ? e.message : String(e)).split('\n').filter(Boolean).slice(0, 4).join(' | ');
    console.log(`FAIL ${name}: ${reason}`);
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true }).catch(() => {});
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message);
}

const nav = (name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });

async function open(name) {
  await nav(name).click();
  await page.getByRole('heading', { level: 1, name, exact: true }).waitFor();
}

/** Waits until `locator` holds `text` (a string or a RegExp). */
async function waitText(locator, text) {
  await locator.getByText(text).first().waitFor();
}

/** The playground's result region, once it shows an answer with this HTTP status. */
async function resultWith(status) {
  const result = page.getByRole('region', { name: 'Result', exact: true });
  await result.getByText(`HTTP ${status}`, { exact: true }).first().waitFor();
  return result;
}

async function callTool({ server, tool, args, key = '', bearer = '' }) {
  await open('Playground');
  await page.getByLabel('Server', { exact: true }).selectOption(server);
  const toolSelect = page.getByLabel('Tool', { exact: true });
  await toolSelect.locator(`option[value="${tool}"]`).waitFor({ state: 'attached' });
  await toolSelect.selectOption(tool);
  for (const [name, value] of Object.entries(args)) await page.getByLabel(name, { exact: true }).fill(value);
  await page.getByLabel('Subscription key', { exact: true }).fill(key);
  await page.getByLabel('Bearer token', { exact: true }).fill(bearer);
  await page.getByRole('button', { name: 'Call', exact: true }).click();
}

let newKey = null;

await step('sign-in', async () => {
  await page.goto(consoleUrl);
  await page.getByLabel('Admin token').fill(adminToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await nav('Servers').waitFor();
  for (const name of ['Servers', 'Products', 'Subscriptions', 'Policies', 'Playground']) await nav(name).waitFor();
  const kept = await page.evaluate(() => Object.keys(sessionStorage).length > 0 && Object.keys(localStorage).length === 0);
  check(kept, 'the token should be kept in sessionStorage only');
});

await step('servers', async () => {
  await open('Servers');
  for (const server of ['guarded', 'open']) {
    const card = page.getByRole('region', { name: server, exact: true });
    await card.getByText('Reachable', { exact: true }).waitFor();
    const tools = card.getByRole('list', { name: `Tools of ${server}` });
    for (const tool of ['echo', 'whoami']) await tools.getByText(tool, { exact: true }).waitFor();
  }
});

await step('subscriptions', async () => {
  await open('Subscriptions');
  await page.getByLabel('Product', { exact: true }).selectOption('team');
  await page.getByLabel('Subscriber', { exact: true }).fill(subscriber);
  await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
  const created = page.getByRole('region', { name: 'Shown once' });
  const primary = (await created.getByLabel('Primary key', { exact: true }).inputValue()).trim();
  check(primary.startsWith('tgk_'), `the new subscription's primary key is shown (got '${primary}')`);
  await created.getByRole('button', { name: 'I have kept it' }).click();
  await created.waitFor({ state: 'detached' });

  const card = page.getByRole('region', { name: subscriber, exact: true });
  await card.getByText('State: pending', { exact: true }).waitFor();
  await card.getByRole('button', { name: 'Approve', exact: true }).click();
  await card.getByText('State: active', { exact: true }).waitFor();

  await card.getByLabel('Key', { exact: true }).selectOption('primary');
  await card.getByRole('button', { name: 'Regenerate', exact: true }).click();
  const shown = page.getByRole('region', { name: 'Shown once' });
  newKey = (await shown.getByLabel('New primary key', { exact: true }).inputValue()).trim();
  check(newKey.startsWith('tgk_') && newKey !== primary, `a new primary key is shown (got '${newKey}')`);
  await shown.getByRole('button', { name: 'I have kept it' }).click();
  await shown.waitFor({ state: 'detached' });
  const stillShown = await page.getByText(newKey).count();
  check(stillShown === 0, 'the key is shown once only');
});

await step('playground-refused', async () => {
  await callTool({ server: 'guarded', tool: 'echo', args: { text: echoed } });
  const result = await resultWith(401);
  await waitText(result, 'Code -32001');
});

await step('playground-bearer', async () => {
  await page.getByLabel('Bearer token', { exact: true }).fill(bearerToken);
  await page.getByRole('button', { name: 'Call', exact: true }).click();
  const result = await resultWith(200);
  await waitText(result, echoed);
  const steps = result.getByRole('list', { name: 'Steps' });
  await steps.getByRole('row').filter({ hasText: 'jwt' }).filter({ hasText: 'continue' }).first().waitFor();
  // The picture for people: no pointer hovering, no focus ring on a button.
  await page.mouse.move(0, 0);
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await page.screenshot({ path: join(shots, 'playground.png'), fullPage: true });
});

const chain = () => page.getByLabel('Chain', { exact: true });

await step('policies-refused', async () => {
  await open('Policies');
  await page.getByLabel('Server', { exact: true }).selectOption('open');
  await page.getByRole('heading', { name: 'Chain in force' }).waitFor();
  await page.waitForFunction(() => {
    const t = [...document.querySelectorAll('textarea')].find((e) => e.labels?.[0]?.textContent === 'Chain');
    return t && !t.disabled;
  });
  // tool-filter refuses a config that names no tools at all.
  await chain().fill('- policy: tool-filter\n  config: {}\n');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  const problem = page.getByRole('alert').filter({ hasText: 'name tools in allow, deny or grants' });
  await problem.waitFor();
  await waitText(problem, 'policies[0].config');
  check((await chain().getAttribute('aria-invalid')) === 'true', 'the Chain field is marked invalid');
});

await step('policies-apply', async () => {
  await chain().fill('- policy: tool-filter\n  config:\n    deny: [echo]\n');
  await page.getByRole('button', { name: 'Apply', exact: true }).click();
  await page.getByRole('status').filter({ hasText: 'Applied' }).waitFor();
  const inForce = page.getByRole('region', { name: 'Chain in force' });
  await inForce.getByText('tool-filter', { exact: true }).waitFor();
});

await step('playground-hidden-tool', async () => {
  check(newKey, 'the subscription step gave a key');
  await callTool({ server: 'open', tool: 'echo', args: { text: echoed }, key: newKey });
  const result = page.getByRole('region', { name: 'Result', exact: true });
  await waitText(result, 'Code -32003');
  // Listed as this caller, through its product and the chain, echo is not among the tools.
  await page.getByRole('button', { name: 'List as this caller', exact: true }).click();
  await page.getByText(/tool\(s\) this caller is shown/).waitFor();
  const offered = await page.getByLabel('Tool', { exact: true }).locator('option').allTextContents();
  check(!offered.some((t) => t.startsWith('echo')) && offered.some((t) => t.startsWith('whoami')), `the caller is shown ${offered.join(', ')}`);
});

await step('narrow-window', async () => {
  await page.setViewportSize({ width: 380, height: 800 });
  for (const name of ['Servers', 'Products', 'Subscriptions', 'Policies', 'Playground']) {
    await open(name);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 380, `${name} is ${wide} px wide in a 380 px window`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
});

await step('keyboard', async () => {
  await open('Servers');
  // The heading of a new page takes the focus; Tab then moves through the page's controls.
  const focused = await page.evaluate(() => document.activeElement?.tagName);
  check(focused === 'H1', `the page heading has the focus (got ${focused})`);
  await page.keyboard.press('Tab');
  const next = await page.evaluate(() => ({ tag: document.activeElement?.tagName, outline: getComputedStyle(document.activeElement).outlineStyle }));
  check(next.tag === 'BUTTON' && next.outline !== 'none', `Tab reaches a control with a visible focus (got ${JSON.stringify(next)})`);
});

await step('versions', async () => {
  await open('Servers');
  const card = page.getByRole('region', { name: 'docs', exact: true });
  await card.getByRole('button', { name: 'Promote v2', exact: true }).click();
  await waitText(card, 'v2 is now the default.');
  // Someone else retires v1 after the page read the routing: the page's change is refused,
  // said so, and the routing shown again.
  const api = (path, init = {}) =>
    fetch(new URL(path, consoleUrl), { ...init, headers: { authorization: `Bearer ${adminToken}`, ...(init.headers ?? {}) } });
  const routing = await api('/api/servers/docs/versions');
  const retired = await api('/api/servers/docs/versions/v1/retire', { method: 'POST', headers: { 'if-match': routing.headers.get('etag') } });
  check(retired.status === 200, `the API retires v1 (got ${retired.status})`);
  await card.getByRole('button', { name: 'Retire v1', exact: true }).click();
  await waitText(card, 'Someone else changed this since it was shown');
  await card.getByRole('button', { name: 'Reinstate v1', exact: true }).waitFor();
});

await step('read-only', async () => {
  const notice = 'Signed in with the read-only token';
  // A tab of its own: the token is held per tab.
  const other = await context.newPage();
  other.setDefaultTimeout(WAIT);
  try {
    await other.goto(consoleUrl);
    await other.getByLabel('Admin token').fill(readOnlyToken);
    await other.getByRole('button', { name: 'Sign in' }).click();
    await other.getByText(notice).first().waitFor();
    // What the token would only be refused is not offered.
    const go = async (name) => {
      await other.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true }).click();
      await other.getByRole('heading', { level: 1, name, exact: true }).waitFor();
    };
    await go('Servers');
    await other.getByRole('region', { name: 'docs', exact: true }).getByText('v1').first().waitFor();
    const none = async (name) => check((await other.getByRole('button', { name, exact: true }).count()) === 0, `no ${name} button for the read-only token`);
    await none('Reinstate v1');
    await none('Set preview');
    await go('Subscriptions');
    await other.getByText(subscriber).first().waitFor();
    await none('Subscribe');
    await none('Suspend');
    await none('Regenerate');
    await go('Policies');
    await other.getByRole('heading', { name: 'Components' }).waitFor();
    await none('Apply');
    await none('Upload');
    await go('Playground');
    const call = other.getByRole('button', { name: 'Call', exact: true });
    await call.waitFor();
    check(await call.isDisabled(), 'Call is disabled for the read-only token');
  } finally {
    await other.close();
  }
  await open('Servers');
  check((await page.getByText(notice).count()) === 0, 'the admin token is not shown as read-only');
});

await step('page-health', async () => {
  check(pageProblems.length === 0, pageProblems.join('; '));
});

await browser.close();
console.log(failures === 0 ? 'console: every step passed' : `console: ${failures} step(s) failed`);
process.exit(failures === 0 ? 0 : 1);
