// The dashboard in headless Chromium (Debian's), driven by playwright-core: signs in,
// loads each page, filters and searches, retries, cancels and deletes (one job, the
// jobs selected, every job of a filter), pauses a queue, watches a progress bar move
// and the throughput chart count; a job's timeline, a cron job's last run; a read
// token sees and changes nothing; a change without the CSRF header is refused.
// Prints "ok - ..." / "not ok - ..." lines; screenshots go to SHOTS.
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
// does what makes the dashboard draw its page again (a click, another hash) and waits
// until the new page replaced the one shown
async function fresh(page, action) {
	await page.$eval('#main', (m) => { m.dataset.stale = '1'; });
	await action();
	await page.waitForSelector('#main:not([data-stale])');
}
const visit = (page, hash) => fresh(page, () => page.goto(BASE + '/' + hash));
const click = (page, sel) => fresh(page, () => page.click(sel));
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
	const drawn = async (k) => (await page.getAttribute(`svg.chart polyline.${k}`, 'data-values').catch(() => '')).split(',').map(Number);
	const sum = (a) => a.reduce((x, y) => x + y, 0);
	const added = sum(await drawn('added'));
	ok((await drawn('added')).length === 60 && added >= 69 &&
		sum(await drawn('completed')) >= 61 && sum(await drawn('failed')) >= 3,
		`overview: the chart opens with the last hour's minutes (${added} added, ${sum(await drawn('completed'))} completed)`);
	await api('/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ task: 'echo', input: 'live' }) });
	ok(await until(async () => sum(await drawn('added')) > added), 'overview: the chart counts a job added meanwhile, without a reload');
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
	// retry one: it runs again and fails again: its error history grows by a "retried" line and the attempt
	await page.click(`tr[data-id="${J.failed}"] button:has-text("retry")`);
	ok(await until(async () => (await api(`/v1/jobs/${J.failed}/errors`)).errors.length === 3),
		'jobs: retry ran the job again');
	// cancel the held one
	await visit(page, '#/jobs?status=held');
	await page.waitForSelector(`tr[data-id="${J.held}"]`);
	await page.click(`tr[data-id="${J.held}"] button:has-text("cancel")`);
	ok(await until(async () => (await api(`/v1/jobs/${J.held}`)).status === 'cancelled'), 'jobs: cancel cancelled the held job');
	// pagination: a cursor to the next page
	await visit(page, '#/jobs');
	await page.waitForSelector('table.jobs');
	const first = await page.$$eval('tr[data-id]', (r) => r.map((x) => x.dataset.id));
	if (await page.$('#next')) {
		await page.click('#next');
		await page.waitForSelector('main a:has-text("first page")');
		const second = await page.$$eval('tr[data-id]', (r) => r.map((x) => x.dataset.id));
		ok(second.length > 0 && !second.some((id) => first.includes(id)), 'jobs: the next page has other jobs');
	} else {
		ok(false, 'jobs: a next page link');
	}

	// select many: retry two failed jobs at once, they run again
	const status = async (id) => { const r = await fetch(`${BASE}/v1/jobs/${id}`, { headers: { Authorization: `Bearer ${ADMIN}` } });
		return r.status === 404 ? 'gone' : (await r.json()).status; };
	const listed = () => page.$$eval('tr[data-id]', (r) => r.map((x) => Number(x.dataset.id)));
	await visit(page, '#/jobs?status=error');
	await page.waitForSelector(`tr[data-id="${J.fail3}"]`);
	ok(await page.isDisabled('#bulk-retry'), 'jobs: the bulk buttons wait for a selection');
	await page.check(`tr[data-id="${J.fail2}"] input.select`);
	await page.check(`tr[data-id="${J.fail3}"] input.select`);
	ok((await page.textContent('#selected')) === '2 selected', 'jobs: the selection is counted');
	await page.screenshot({ path: `${SHOTS}/jobs-select.png`, fullPage: true });
	await click(page, '#bulk-retry');
	await page.waitForSelector('#notice');
	ok((await page.textContent('#notice')).startsWith('retry: 2 changed'), `jobs: retry selected answers (${await page.textContent('#notice')})`);
	ok(await until(async () => (await api(`/v1/jobs/${J.fail2}/errors`)).errors.length === 3 &&
		(await api(`/v1/jobs/${J.fail3}/errors`)).errors.length === 3), 'jobs: retry selected ran both again');
	// cancel two held jobs, then delete one of them
	await visit(page, '#/jobs?status=held');
	await page.waitForSelector(`tr[data-id="${J.held3}"]`);
	await page.check(`tr[data-id="${J.held2}"] input.select`);
	await page.check(`tr[data-id="${J.held3}"] input.select`);
	await click(page, '#bulk-cancel');
	await page.waitForSelector('#notice');
	ok(await status(J.held2) === 'cancelled' && await status(J.held3) === 'cancelled', 'jobs: cancel selected cancelled both');
	ok(!(await listed()).includes(J.held2), 'jobs: the page reloads without them');
	ok(await status(J.unique) === 'held', 'jobs: the held job not selected stays held');
	await visit(page, '#/jobs?status=cancelled');
	await page.waitForSelector(`tr[data-id="${J.held2}"]`);
	await page.check(`tr[data-id="${J.held2}"] input.select`);
	await click(page, '#bulk-delete');
	await page.waitForSelector('#notice');
	ok(await status(J.held2) === 'gone' && await status(J.held3) === 'cancelled', 'jobs: delete selected deleted the one selected');
	// apply to everything the filter matches, after a confirm: dismissed, nothing changes
	page.once('dialog', (d) => d.dismiss());
	await click(page, '#all-delete');
	await page.waitForSelector('#all-delete:not([disabled])');
	ok(await status(J.held3) === 'cancelled', 'jobs: delete all, not confirmed, deleted nothing');
	const cancelled = (await api('/v1/jobs?status=cancelled')).jobs.length;
	let asked = '';
	page.once('dialog', (d) => { asked = d.message(); d.accept(); });
	await click(page, '#all-delete');
	await page.waitForSelector('#notice');
	ok(asked.includes('every job this filter matches'), `jobs: delete all asks first (${asked})`);
	ok((await page.textContent('#notice')).startsWith(`delete: ${cancelled} changed`) &&
		(await api('/v1/jobs?status=cancelled')).jobs.length === 0 && await status(J.held3) === 'gone',
		`jobs: delete all deleted every cancelled job (${cancelled}: ${await page.textContent('#notice')})`);
	ok(await status(J.done) === 'completed', 'jobs: and no other job');

	// search: by unique key, by id, by the time added
	await visit(page, '#/jobs');
	await page.waitForSelector('table.jobs');
	await page.fill('#f-unique', 'report-42');
	await click(page, '#f-apply');
	await page.waitForFunction(() => location.hash.includes('unique=report-42'));
	await page.waitForSelector(`tr[data-id="${J.unique}"]`);
	ok((await listed()).join() === String(J.unique), `jobs: the unique key finds its job (${await listed()})`);
	await page.screenshot({ path: `${SHOTS}/jobs-search.png`, fullPage: true });
	await page.fill('#f-unique', 'no-such-key');
	await click(page, '#f-apply');
	await page.waitForFunction(() => location.hash.includes('no-such-key'));
	await page.waitForSelector('table.jobs');
	ok((await listed()).length === 0, 'jobs: an unknown unique key finds nothing');
	const local = (t) => { const d = new Date(t * 1000); return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };
	const minute = Math.floor(Date.now() / 60000) * 60;
	await visit(page, '#/jobs');
	await page.waitForSelector('table.jobs');
	await page.fill('#f-added_after', local(minute + 120));
	await click(page, '#f-apply');
	await page.waitForFunction((t) => location.hash.includes(`added_after=${t}`), minute + 120);
	await page.waitForSelector('table.jobs');
	ok((await listed()).length === 0, 'jobs: nothing was added after two minutes from now');
	ok(await page.inputValue('#f-added_after') === local(minute + 120), 'jobs: the time filter shows what it filters');
	await page.fill('#f-added_after', local(minute - 3600));
	await page.fill('#f-added_before', local(minute + 120));
	await page.selectOption('#f-status', 'completed');
	await click(page, '#f-apply');
	await page.waitForFunction(() => location.hash.includes('added_before='));
	await page.waitForSelector(`tr[data-id="${J.done}"]`);
	ok((await listed()).length === 50, 'jobs: the last hour has a page of completed jobs');
	await page.fill('#f-id', String(J.done));
	await click(page, '#f-open');
	await page.waitForSelector('#fields');
	ok(page.url().endsWith(`#/job/${J.done}`) && (await page.textContent('main h1')).startsWith(`Job ${J.done}`),
		'jobs: the id box opens the job');
	await visit(page, '#/jobs');
	await page.waitForSelector('table.jobs');
	const before = errors.length;
	await page.fill('#f-id', '999999');
	await click(page, '#f-open');
	await page.waitForSelector('main p.error');
	ok((await page.textContent('main p.error')).includes('job 999999 not found'), 'jobs: an unknown id says so');
	errors.splice(before, Infinity, ...errors.slice(before).filter((e) => !e.includes('404'))); // the browser's line for it

	// job: fields, input, result; a running job's progress bar moves
	await visit(page, `#/job/${J.done}`);
	await page.waitForSelector('#fields');
	ok((await page.textContent('#input')).includes('hello'), 'job: its input');
	ok((await page.textContent('#result')).includes('hello'), 'job: its result');
	const steps = () => page.$$eval('#timeline tr', (r) => r.slice(1).map((x) => [...x.cells].map((c) => c.textContent)));
	const done = await steps();
	ok(done.length === 3 && done[0][2] === 'added' && done[1][2] === 'attempt 1 started' && done[2][2] === 'completed' &&
		done[2][3].endsWith(' s') && Date.parse(done[0][0]) <= Date.parse(done[1][0]) && Date.parse(done[1][0]) <= Date.parse(done[2][0]),
		`job: the timeline is added, started, completed (${done.map((x) => x[2])})`);
	await page.screenshot({ path: `${SHOTS}/job.png`, fullPage: true });
	// a job retried once: both failed attempts, each with its time and duration
	await visit(page, `#/job/${J.failed}`);
	await page.waitForSelector('#timeline');
	const fails = await steps();
	const tries = fails.filter((x) => x[2].startsWith('attempt '));
	ok(fails.length === 5 && tries.length === 2 && tries.every((x) => x[2].endsWith('failed: boom') && /^\d+\.\d{3} s$/.test(x[3]) &&
		!Number.isNaN(Date.parse(x[0]))) && Date.parse(tries[0][0]) < Date.parse(tries[1][0]) &&
		fails[2][2].startsWith('retried') && fails[4][2] === 'error',
		`job: the timeline has each failed attempt with its time and duration (${fails.map((x) => x.join(' '))})`);
	await page.screenshot({ path: `${SHOTS}/job-timeline.png`, fullPage: true });
	await visit(page, `#/job/${J.running}`);
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
	// each queue's rate is its last whole minute of the store's minutes
	const rate = async () => {
		const m = (await api('/v1/stats/history?minutes=2&queue=mail')).minutes[0];
		const cells = await page.$$eval('tr[data-queue="mail"] td', (t) => t.map((x) => x.textContent));
		return cells[4] === String(m.added) && cells[5] === String(m.completed + m.failed);
	};
	ok(await until(rate), 'queues: each queue\'s jobs added and finished in the last whole minute');
	await page.screenshot({ path: `${SHOTS}/queues.png`, fullPage: true });
	// a job added to the paused queue is its oldest queued one on the overview
	const parked = await api('/v1/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ task: 'echo', input: 'parked', queue: 'mail' }) });
	await visit(page, '#/overview');
	ok(await until(async () => (await page.getAttribute('#queues tr[data-queue="mail"] td.oldest a', 'href').catch(() => null)) === `#/job/${parked.id}`),
		`overview: the oldest queued job of the paused queue is the one added to it (${parked.id})`);
	ok(await until(async () => {
		const first = (await api('/v1/jobs?status=queued&queue=default&limit=1')).jobs[0];
		const cell = await page.textContent('#queues tr[data-queue="default"] td.oldest');
		return first ? cell.startsWith(`#${first.id} `) : cell === 'none';
	}), 'overview: the default queue\'s oldest queued job, or none');
	const hb = (await api('/v1/hosts')).hosts[0];
	ok(await until(async () => (await page.textContent(`#busy tr[data-instance="${hb.instance}"] td.busy`).catch(() => '')) ===
		`${(await api('/v1/hosts')).hosts[0].running} of ${hb.workers}`), 'overview: busy workers per host, as the host records them');
	await visit(page, '#/queues');
	await page.click('tr[data-queue="mail"] button:has-text("resume")');
	ok(await until(async () => !(await api('/v1/queues')).queues.find((q) => q.name === 'mail').paused), 'queues: resume resumed it');

	for (const name of ['cron', 'hosts']) {
		await page.click(`#nav a[href="#/${name}"]`);
		await page.waitForSelector(`#${name === 'cron' ? 'cron' : 'host'}-list`);
		await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
	}
	const hl = (await api('/v1/hosts')).hosts;
	const hrow = await page.$$eval(`#host-list tr[data-instance="${hl[0].instance}"] td`, (t) => t.map((x) => x.textContent));
	ok(hl.length === 1 && hrow[0] === hl[0].name && hrow[1] === String(hl[0].pid) && hrow[3] === 'default: multi, mail: simple' &&
		hrow[4] === '5' && /^\d+$/.test(hrow[5]) && hrow[7] !== '' && hrow[8] === 'alive',
		`hosts: this host with its strategies, workers, jobs running, heartbeat (${hrow.join(' | ')})`);
	await page.click('#nav a[href="#/cron"]');
	await page.waitForSelector('#cron-list');
	ok((await page.textContent('#cron-list')).includes('*/5 * * * *'), 'cron: the schedule is listed');
	const cj = (await api('/v1/cron')).cron.find((x) => x.id === J.cron);
	const row = await page.$$eval(`#cron-list tr[data-id="${J.cron}"] td`, (t) => t.map((x) => x.textContent));
	ok(cj.last_run > 0 && row[5] === String(cj.last_run) && row[6] === 'error' && row[7] === cj.last_run_finished && row[8] === 'paused',
		`cron: each schedule's last run, its result and end (${row.join(' | ')})`);
	// the page's three next fire times are the API's, asked before the page loads and
	// after (counted from when it is asked); the paused schedule has none
	const every5 = (await api('/v1/cron')).cron.find((x) => x.schedule === '*/5 * * * *').id;
	const firesBefore = (await api(`/v1/cron/${every5}/next?count=3`)).next;
	await visit(page, '#/hosts');
	await visit(page, '#/cron');
	const shown = await page.$$eval(`#cron-list tr[data-id="${every5}"] td.next`, (t) => t[0].innerText.split('\n'));
	const firesAfter = (await api(`/v1/cron/${every5}/next?count=3`)).next;
	const pausedNext = await api(`/v1/cron/${J.cron}/next?count=3`);
	const pausedShown = await page.$$eval(`#cron-list tr[data-id="${J.cron}"] td.next`, (t) => t[0].innerText);
	ok(pausedNext.paused === true && pausedNext.next.length === 0 && pausedShown === '',
		`cron: a paused schedule shows no fire times (${JSON.stringify(pausedNext)}, page: '${pausedShown}')`);
	const t = Date.parse;
	ok(shown.length === 3 && firesBefore.length === 3 && firesAfter.length === 3 &&
		shown.every((x, i) => t(firesBefore[i]) <= t(x) && t(x) <= t(firesAfter[i])),
		`cron: each schedule's next three fire times (${shown.join(', ')}; the API: ${firesBefore.join(', ')} / ${firesAfter.join(', ')})`);

	// a change without the CSRF header is refused, with it allowed
	const noCsrf = await page.evaluate(async (id) => (await fetch(`/v1/jobs/${id}/cancel`, { method: 'POST' })).status, J.running);
	ok(noCsrf === 403, `a change without the X-CSRF-Token header is refused (${noCsrf})`);
	ok((await api(`/v1/jobs/${J.running}`)).status !== 'cancelled', 'and the job was not touched');

	// a read token sees everything and changes nothing
	const rp = await newPage();
	await signIn(rp, READ);
	await rp.waitForSelector('#counts');
	ok((await rp.textContent('#who')).includes('read'), 'a read token signs in');
	await visit(rp, '#/jobs');
	await rp.waitForSelector('tr[data-id] button');
	const enabled = await rp.$$eval('tr[data-id] button, #bulk button', (b) => b.filter((x) => !x.disabled).length);
	ok(enabled === 0, `with a read token every change button is disabled (${enabled} enabled)`);
	// and were one enabled, the refusal is shown
	await rp.$eval('#all-retry', (b) => { b.disabled = false; });
	rp.once('dialog', (d) => d.accept());
	await click(rp, '#all-retry');
	await rp.waitForSelector('#notice');
	const refusal = await rp.textContent('#notice.error');
	ok(refusal.includes('refused (HTTP 403)') && refusal.includes('needs a token of scope write'),
		`a read session's bulk change shows the refusal (${refusal})`);
	const asRead = await rp.evaluate(async (id) => {
		const s = await (await fetch('/ui/session')).json();
		return (await fetch(`/v1/jobs/${id}/cancel`, { method: 'POST', headers: { 'X-CSRF-Token': s.csrf } })).status;
	}, J.running);
	ok(asRead === 403, `a change asked with a read session is refused (${asRead})`);
	await visit(rp, '#/queues');
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
