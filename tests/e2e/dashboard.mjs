// The dashboard in headless Chromium (Debian's), driven by playwright-core: signs in,
// loads each page, filters, retries, cancels, pauses a queue, watches a progress bar
// move; a read token sees and changes nothing; a change without the CSRF header is
// refused. Prints "ok - ..." / "not ok - ..." lines; screenshots go to SHOTS.
import { createRequire } from 'node:module';

const require = createRequire(process.env.NODE_MODULES + '/');
const { chromium } = require('playwright-core');
const BASE = process.env.BASE, ADMIN = process.env.ADMIN, READ = process.env.READ;
const SHOTS = process.env.SHOTS;
const J = JSON.parse(process.env.JOBS); // ids the shell made: {done, failed, held, running}
let failed = 0;
const ok = (cond, desc) => { if (!cond) failed++; console.log(`${cond ? 'ok' : 'not ok'} - ${desc}`); };
const api = async (path, opts = {}) => {
	const r = await fetch(BASE + path, { ...opts, headers: { Authorization: `Bearer ${ADMIN}`, ...(opts.headers || {}) } });
	return r.json();
};
const until = async (fn, ms = 10000) => {
	const end = Date.now() + ms;
	for (;;) {
		if (await fn()) return true;
		if (Date.now() > end) return false;
		await new Promise((r) => setTimeout(r, 50));
	}
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
const errors = [];
async function newPage() {
	const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
	const page = await ctx.newPage();
	page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
	page.on('pageerror', (e) => errors.push(e.message));
	return page;
}
async function signIn(page, token) {
	await page.goto(BASE + '/');
	await page.waitForSelector('#signin:not([hidden])');
	await page.fill('#token', token);
	await page.click('#signin button');
}

try {
	const page = await newPage();
	// a wrong token is refused, saying so
	await page.goto(BASE + '/');
	await page.waitForSelector('#signin:not([hidden])');
	await page.fill('#token', 'not-a-token-0123456789');
	await page.click('#signin button');
	await page.waitForFunction(() => document.querySelector('#signin-error').textContent !== '');
	ok((await page.textContent('#signin-error')).includes("not one of token_file's"), 'a wrong token is refused');
	await page.screenshot({ path: `${SHOTS}/signin.png` });
	errors.length = 0; // the 401 of that sign-in is the browser's own console line
	await page.fill('#token', ADMIN);
	await page.click('#signin button');
	await page.waitForSelector('#counts');
	const cookies = await page.context().cookies();
	const c = cookies.find((k) => k.name === 'th_session');
	ok(c && c.httpOnly && c.sameSite === 'Strict', 'the session cookie is HttpOnly and SameSite=Strict');
	const stats = await api('/v1/stats');
	const cards = await page.$$eval('#counts .card', (cs) => cs.map((x) => x.textContent));
	ok(cards.includes(`${stats.counts.completed}completed`) && cards.includes(`${stats.counts.error}error`),
		`overview: the counts are the store's (${cards.join(' ')})`);
	ok(await page.$('svg.chart polyline.completed') !== null, 'overview: the throughput chart is drawn');
	ok((await page.textContent('#queues')).includes('mail'), 'overview: counts per queue');
	await page.waitForTimeout(2500); // one poll: it updates without a reload
	ok(await page.$('#counts') !== null, 'overview: still there after a live update');
	await page.screenshot({ path: `${SHOTS}/overview.png`, fullPage: true });

	// jobs: filter by status
	await page.click('#nav a[href="#/jobs"]');
	await page.waitForSelector('table.jobs');
	await page.selectOption('#f-status', 'error');
	await page.click('#f-apply');
	await page.waitForFunction(() => location.hash.includes('status=error'));
	await page.waitForSelector('table.jobs tr[data-id]');
	const statuses = await page.$$eval('table.jobs tr[data-id] td[class^="status-"]', (t) => t.map((x) => x.textContent));
	ok(statuses.length > 0 && statuses.every((s) => s === 'error'), `jobs: the filter shows only errors (${statuses})`);
	await page.screenshot({ path: `${SHOTS}/jobs.png`, fullPage: true });
	// retry one: it runs again (and fails again: its error history grows)
	await page.click(`tr[data-id="${J.failed}"] button:has-text("retry")`);
	ok(await until(async () => (await api(`/v1/jobs/${J.failed}/errors`)).errors.length === 2),
		'jobs: retry ran the job again');
	// cancel the held one
	await page.goto(BASE + '/#/jobs?status=held');
	await page.waitForSelector(`tr[data-id="${J.held}"]`);
	await page.click(`tr[data-id="${J.held}"] button:has-text("cancel")`);
	ok(await until(async () => (await api(`/v1/jobs/${J.held}`)).status === 'cancelled'), 'jobs: cancel cancelled the held job');
	// pagination: a cursor to the next page
	await page.goto(BASE + '/#/jobs');
	await page.waitForSelector('table.jobs');
	const first = await page.$$eval('tr[data-id]', (r) => r.map((x) => x.dataset.id));
	if (await page.$('#next')) {
		await page.click('#next');
		await page.waitForFunction(() => location.hash.includes('cursor='));
		await page.waitForSelector('tr[data-id]');
		const second = await page.$$eval('tr[data-id]', (r) => r.map((x) => x.dataset.id));
		ok(second.length > 0 && !second.some((id) => first.includes(id)), 'jobs: the next page has other jobs');
	} else {
		ok(false, 'jobs: a next page link');
	}

	// job: fields, input, result; a running job's progress bar moves
	await page.goto(BASE + `/#/job/${J.done}`);
	await page.waitForSelector('#fields');
	ok((await page.textContent('#input')).includes('hello'), 'job: its input');
	ok((await page.textContent('#result')).includes('hello'), 'job: its result');
	await page.screenshot({ path: `${SHOTS}/job.png`, fullPage: true });
	await page.goto(BASE + `/#/job/${J.running}`);
	await page.waitForSelector('#progress');
	const p1 = Number(await page.getAttribute('#progress', 'data-value'));
	const moved = await until(async () => Number(await page.getAttribute('#progress', 'data-value').catch(() => -1)) > p1, 8000);
	ok(moved, `job: the progress bar moves (from ${p1}%)`);
	await page.screenshot({ path: `${SHOTS}/progress.png`, fullPage: true });

	// queues: pause and resume
	await page.click('#nav a[href="#/queues"]');
	await page.waitForSelector('tr[data-queue="mail"]');
	await page.click('tr[data-queue="mail"] button:has-text("pause")');
	ok(await until(async () => (await api('/v1/queues')).queues.find((q) => q.name === 'mail').paused), 'queues: pause paused it');
	await page.waitForSelector('tr[data-queue="mail"] button:has-text("resume")');
	await page.screenshot({ path: `${SHOTS}/queues.png`, fullPage: true });
	await page.click('tr[data-queue="mail"] button:has-text("resume")');
	ok(await until(async () => !(await api('/v1/queues')).queues.find((q) => q.name === 'mail').paused), 'queues: resume resumed it');

	for (const name of ['cron', 'hosts']) {
		await page.click(`#nav a[href="#/${name}"]`);
		await page.waitForSelector(`#${name === 'cron' ? 'cron' : 'host'}-list`);
		await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
	}
	ok((await page.textContent('#host-list')).includes('multi'), 'hosts: the strategy is shown');
	await page.click('#nav a[href="#/cron"]');
	await page.waitForSelector('#cron-list');
	ok((await page.textContent('#cron-list')).includes('*/5 * * * *'), 'cron: the schedule is listed');

	// a change without the CSRF header is refused, with it allowed
	const noCsrf = await page.evaluate(async (id) => (await fetch(`/v1/jobs/${id}/cancel`, { method: 'POST' })).status, J.running);
	ok(noCsrf === 403, `a change without the X-CSRF-Token header is refused (${noCsrf})`);
	ok((await api(`/v1/jobs/${J.running}`)).status !== 'cancelled', 'and the job was not touched');

	// a read token sees everything and changes nothing
	const rp = await newPage();
	await signIn(rp, READ);
	await rp.waitForSelector('#counts');
	ok((await rp.textContent('#who')).includes('read'), 'a read token signs in');
	await rp.goto(BASE + '/#/jobs');
	await rp.waitForSelector('tr[data-id] button');
	const enabled = await rp.$$eval('tr[data-id] button', (b) => b.filter((x) => !x.disabled).length);
	ok(enabled === 0, `with a read token every change button is disabled (${enabled} enabled)`);
	const asRead = await rp.evaluate(async (id) => {
		const s = await (await fetch('/ui/session')).json();
		return (await fetch(`/v1/jobs/${id}/cancel`, { method: 'POST', headers: { 'X-CSRF-Token': s.csrf } })).status;
	}, J.running);
	ok(asRead === 403, `a change asked with a read session is refused (${asRead})`);
	await rp.goto(BASE + '/#/queues');
	await rp.waitForSelector('tr[data-queue="mail"]');
	await rp.screenshot({ path: `${SHOTS}/queues-read.png`, fullPage: true });

	const real = errors.filter((e) => !e.includes('403') && !e.includes('401'));
	ok(real.length === 0, `no console errors${real.length ? ': ' + real.join(' | ') : ''}`);
} catch (e) {
	ok(false, `the browser run: ${e.stack || e}`);
} finally {
	await browser.close();
}
process.exit(failed ? 1 : 0);
