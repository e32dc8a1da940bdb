// The dashboard: signs in with a token (the host sets a session cookie), then shows the
// pages from the API under /v1, polling for live updates. Changes carry the session's
// CSRF token in a header.
import { lineChart } from './chart.js';

const STATUSES = ['queued', 'processing', 'completed', 'error', 'cancelled', 'delayed', 'held', 'cronjob'];
const POLL_MS = 2000;
const NEXT_FIRES = 3; // a cron job's fire times shown
let session = null; // {name, scope, csrf}
let timer = null;

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs = {}, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (k === 'onclick') e.addEventListener('click', v);
		else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v);
	}
	for (const k of kids.flat()) e.append(k instanceof Node ? k : String(k ?? ''));
	return e;
}

async function api(method, path, body) {
	const headers = {};
	if (method !== 'GET') headers['X-CSRF-Token'] = session ? session.csrf : '';
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	const r = await fetch(path, { method, headers, credentials: 'same-origin',
		body: body === undefined ? undefined : JSON.stringify(body) });
	const doc = await r.json().catch(() => null);
	if (r.status === 401) { showSignin(); throw new Error('signed out'); }
	if (!r.ok) throw new Error(`${r.status === 403 ? 'refused' : 'failed'} (HTTP ${r.status}): ${doc && doc.error ? doc.error.message : r.statusText}`);
	return doc;
}

const canWrite = () => session && session.scope !== 'read';
const canAdmin = () => session && session.scope === 'admin';
// what the last change answered ({text, error}): shown atop the page until the next
// change or another page
let notice = null;
function button(text, fn, enabled = true) {
	const b = el('button', { disabled: !enabled }, text);
	b.addEventListener('click', async () => {
		b.disabled = true;
		notice = null;
		try { await fn(); } catch (e) { notice = { text: e.message, error: true }; }
		route();
	});
	return b;
}
function statusCell(s) { return el('td', { class: `status-${s}` }, s); }

// ---- pages ----

async function overview(main) {
	// the store keeps each minute's counts: the chart is the last hour at every poll
	const [s, h, hs] = await Promise.all([api('GET', '/v1/stats'), api('GET', '/v1/stats/history?minutes=60'),
		api('GET', '/v1/hosts').catch(() => null)]);
	const per = (k) => h.minutes.map((m) => m[k]);
	// each queue's oldest queued job: the first of its queued jobs, which list oldest first
	const queues = Object.entries(s.queues);
	const oldest = await Promise.all(queues.map(([q, c]) => (c.queued
		? api('GET', `/v1/jobs?status=queued&queue=${encodeURIComponent(q)}&limit=1`).then((d) => d.jobs[0])
		: null)));
	const waiting = (j) => `#${j.id} ${j.task}, waiting ${((Date.now() - Date.parse(j.added)) / 1000).toFixed(1)} s`;
	main.append(el('h1', {}, 'Overview'),
		el('div', { class: 'cards', id: 'counts' }, STATUSES.map((k) =>
			el('a', { class: 'card', href: `#/jobs?status=${k}` }, el('b', {}, s.counts[k]), k))),
		el('h2', {}, 'Per queue'),
		el('table', { id: 'queues' }, el('tr', {}, el('th', {}, 'queue'), STATUSES.map((k) => el('th', {}, k)), el('th', {}, 'oldest queued')),
			queues.map(([q, c], i) => el('tr', { 'data-queue': q }, el('td', {}, q), STATUSES.map((k) => el('td', {}, c[k])),
				el('td', { class: 'oldest' }, oldest[i] ? el('a', { href: `#/job/${oldest[i].id}` }, waiting(oldest[i])) : 'none')))),
		el('h2', {}, 'Busy workers per host'),
		hs === null ? el('p', {}, 'the hosts could not be read')
			: hs.hosts.filter((x) => !x.gone).length === 0 ? el('p', {}, 'no host processes jobs')
				: el('table', { id: 'busy' }, el('tr', {}, ['host', 'pid', 'busy', 'heartbeat'].map((x) => el('th', {}, x))),
					hs.hosts.filter((x) => !x.gone).map((x) => el('tr', { 'data-instance': x.instance }, el('td', {}, x.name),
						el('td', {}, x.pid), el('td', { class: 'busy' }, `${x.running} of ${x.workers}`), el('td', {}, x.heartbeat)))),
		el('h2', {}, `Throughput per minute, the last hour (${s.jobs_per_second.toFixed(2)} finished/s over the last minute)`),
		lineChart(['added', 'completed', 'failed'].map((k) => ({ name: k, values: per(k) })), { unit: 'per minute' }),
		el('p', { class: 'legend' }, el('span', { class: 'status-queued' }, '— added'),
			el('span', { class: 'status-completed' }, '— completed'), el('span', { class: 'status-error' }, '— failed')),
		el('h2', {}, 'Oldest queued job'),
		el('p', {}, s.oldest_queued ? el('a', { href: `#/job/${s.oldest_queued.id}` },
			`#${s.oldest_queued.id} ${s.oldest_queued.task}, waiting ${s.oldest_queued.waiting.toFixed(1)} s`) : 'none'));
	const recent = await api('GET', '/v1/jobs?status=error&limit=5');
	main.append(el('h2', {}, 'Recent failures'), jobsTable(recent.jobs));
	return true; // live
}

function jobsTable(jobs, actions = false, selected = null) {
	const all = selected ? el('input', { type: 'checkbox', id: 'select-all', title: 'select every job of this page' }) : null;
	const boxes = [];
	if (all) all.addEventListener('change', () => { for (const b of boxes) { b.checked = all.checked; b.dispatchEvent(new Event('change')); } });
	return el('table', { class: 'jobs' },
		el('tr', {}, selected ? el('th', {}, all) : [],
			['id', 'task', 'queue', 'status', 'attempts', 'added', 'finished', 'took'].map((h) => el('th', {}, h)), actions ? el('th', {}, '') : []),
		jobs.map((j) => {
			let box = [];
			if (selected) {
				const b = el('input', { type: 'checkbox', class: 'select', value: j.id });
				b.addEventListener('change', () => { if (b.checked) selected.add(j.id); else selected.delete(j.id); selected.changed(); });
				boxes.push(b);
				box = el('td', {}, b);
			}
			return el('tr', { 'data-id': j.id }, box,
				el('td', {}, el('a', { href: `#/job/${j.id}` }, j.id)), el('td', {}, j.task), el('td', {}, j.queue),
				statusCell(j.status), el('td', {}, `${j.attempts}/${j.max_attempts}`), el('td', {}, j.added || ''),
				el('td', {}, j.finished || ''), el('td', {}, j.took === null ? '' : `${j.took.toFixed(3)} s`),
				actions ? el('td', {}, jobButtons(j)) : []);
		}));
}

function jobButtons(j) {
	const w = canWrite();
	return [button('retry', () => api('POST', `/v1/jobs/${j.id}/retry`), w && (j.status === 'error' || j.status === 'cancelled')),
		' ', button('cancel', () => api('POST', `/v1/jobs/${j.id}/cancel`),
			w && !['completed', 'error', 'cancelled'].includes(j.status)),
		' ', button('start', () => api('POST', `/v1/jobs/${j.id}/start`), w && (j.status === 'held' || j.status === 'delayed'))];
}

// the filters of GET /v1/jobs the page offers; times travel as seconds since the epoch
const FILTERS = ['status', 'task', 'queue', 'unique', 'added_after', 'added_before', 'finished_after', 'finished_before'];
const isTime = (k) => k.endsWith('_after') || k.endsWith('_before');
// seconds <-> the local time a datetime-local input shows
const toLocal = (s) => { const d = new Date(Number(s) * 1000); return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); };
const fromLocal = (v) => String(Math.floor(Date.parse(v) / 1000));

function bulkSummary(action, d) {
	const parts = [`${d.changed} changed`];
	if (d.stopping) parts.push(`${d.stopping} running, asked to stop`);
	parts.push(`${d.skipped} skipped (their status does not allow it)`);
	if (d.not_found) parts.push(`${d.not_found} not found`);
	return `${action}: ${parts.join(', ')}`;
}

async function jobs(main, q) {
	const f = {};
	for (const k of FILTERS) if (q.get(k)) f[k] = q.get(k);
	const args = new URLSearchParams({ limit: '50', ...f });
	if (q.get('cursor')) args.set('cursor', q.get('cursor'));
	const doc = await api('GET', `/v1/jobs?${args}`);
	const inputs = {
		status: el('select', { id: 'f-status' }, el('option', { value: '' }, 'any status'),
			STATUSES.map((s) => el('option', { value: s, selected: s === f.status }, s))),
		task: el('input', { id: 'f-task', placeholder: 'task', value: f.task }),
		queue: el('input', { id: 'f-queue', placeholder: 'queue', value: f.queue }),
		unique: el('input', { id: 'f-unique', placeholder: 'unique key', value: f.unique }),
	};
	const times = el('div', { class: 'filters' });
	for (const k of FILTERS.filter(isTime)) {
		inputs[k] = el('input', { id: `f-${k}`, type: 'datetime-local', value: f[k] ? toLocal(f[k]) : null });
		times.append(el('label', {}, `${k.replace('_', ' ')} `, inputs[k]));
	}
	const apply = el('button', { id: 'f-apply' }, 'Filter');
	apply.addEventListener('click', () => {
		const n = new URLSearchParams();
		for (const [k, i] of Object.entries(inputs)) if (i.value) n.set(k, isTime(k) ? fromLocal(i.value) : i.value.trim());
		location.hash = `#/jobs?${n}`;
	});
	const idBox = el('input', { id: 'f-id', placeholder: 'job id' });
	const go = el('button', { id: 'f-open' }, 'Open');
	go.addEventListener('click', () => { if (idBox.value) location.hash = `#/job/${idBox.value.trim()}`; });

	// bulk changes: the jobs ticked, or every job the filter matches (the server walks them)
	const selected = new Set();
	const count = el('span', { id: 'selected' }, '0 selected');
	const w = canWrite();
	const bulkButtons = [];
	selected.changed = () => {
		count.textContent = `${selected.size} selected`;
		for (const b of bulkButtons) b.disabled = !w || selected.size === 0;
	};
	const bulk = async (action, body, what) => {
		if (what && !confirm(`${action} ${what}?`)) return;
		const d = await api('POST', '/v1/jobs/bulk', { action, ...body });
		notice = { text: bulkSummary(action, d) };
	};
	const selBar = el('div', { class: 'filters', id: 'bulk' }, count, ['retry', 'cancel', 'delete'].map((a) => {
		const b = button(`${a} selected`, () => bulk(a, { ids: [...selected] }), false);
		b.id = `bulk-${a}`;
		bulkButtons.push(b);
		return b;
	}), el('span', { class: 'sep' }, 'every job the filter matches:'), ['retry', 'cancel', 'delete'].map((a) => {
		const b = button(`${a} all`, () => bulk(a, { filter: f }, Object.keys(f).length ? 'every job this filter matches' : 'every job'), w);
		b.id = `all-${a}`;
		return b;
	}));
	const next = new URLSearchParams(q);
	if (doc.next_cursor) next.set('cursor', doc.next_cursor);
	main.append(el('h1', {}, 'Jobs'));
	main.append(el('div', { class: 'filters' }, inputs.status, inputs.task, inputs.queue, inputs.unique, apply, idBox, go),
		times, selBar, jobsTable(doc.jobs, true, selected),
		el('p', {}, q.get('cursor') ? el('a', { href: '#/jobs' }, 'first page') : '', ' ',
			doc.next_cursor ? el('a', { id: 'next', href: `#/jobs?${next}` }, 'next page') : ''));
	return false;
}

// a job's life from its fields and its error history ('attempt 2 at TIME for 0.250 s:
// why', one line per failed attempt; lines written before the times have none; a
// 'retried: ...' line where a retry counted the attempts from 1 again)
function timeline(j, errors) {
	const rows = [{ at: j.added, what: 'added' }];
	for (const line of Array.isArray(errors) ? errors : []) {
		const m = /^attempt (\d+)(?: at (\S+) for ([\d.]+) s)?: (.*)$/s.exec(line);
		if (m) rows.push({ at: m[2] || null, what: `attempt ${m[1]} failed: ${m[4]}`, took: m[3] ? Number(m[3]) : null });
		else if (line.startsWith('retried')) rows.push({ at: null, what: 'retried: attempts counted from 1 again' });
	}
	if (j.started && !rows.some((r) => r.at === j.started))
		rows.push({ at: j.started, what: `attempt ${j.attempts} started` + (j.status === 'processing' ? ', running' : ''),
			took: j.status === 'processing' ? (Date.now() - Date.parse(j.started)) / 1000 : null });
	if (j.due && j.status === 'delayed') rows.push({ at: j.due, what: 'due' });
	if (j.finished) rows.push({ at: j.finished, what: j.status, took: j.took });
	const t0 = Date.parse(j.added);
	return el('table', { id: 'timeline' }, el('tr', {}, ['when', 'after added', 'what', 'took'].map((h) => el('th', {}, h))),
		rows.map((r) => el('tr', {}, el('td', {}, r.at || '(not kept)'),
			el('td', {}, r.at ? `+${((Date.parse(r.at) - t0) / 1000).toFixed(3)} s` : ''),
			r.what in { completed: 1, error: 1, cancelled: 1 } ? statusCell(r.what) : el('td', {}, r.what),
			el('td', { class: 'took' }, r.took === null || r.took === undefined ? '' : `${r.took.toFixed(3)} s`))));
}

async function job(main, id) {
	const j = await api('GET', `/v1/jobs/${id}`);
	const bytes = async (kind) => { try { const d = await api('GET', `/v1/jobs/${id}/${kind}`); return d[kind] ?? d[`${kind}_base64`] ?? ''; } catch { return ''; } };
	// a result only a completed job (or a cron job whose run left one) has: asked for then only
	const hasResult = j.status === 'completed' || (j.status === 'cronjob' && j.result_size > 0);
	const [input, result, errors] = await Promise.all([bytes('input'), hasResult ? bytes('result') : '', bytes('errors')]);
	main.append(el('h1', {}, `Job ${j.id}: ${j.task}`),
		el('p', {}, jobButtons(j)),
		el('table', { id: 'fields' }, Object.entries(j).map(([k, v]) => el('tr', {}, el('th', {}, k),
			k === 'status' ? statusCell(v) : el('td', {}, typeof v === 'object' ? JSON.stringify(v) : v)))));
	if (j.status === 'processing') {
		const p = await api('GET', `/v1/jobs/${id}/progress`);
		const pct = p.progress === null ? 0 : Math.round(p.progress * 100);
		const fill = el('div');
		fill.style.width = `${pct}%`; // through the CSSOM: the page's policy allows no inline style
		main.append(el('h2', {}, 'Progress'), el('div', { class: 'bar', id: 'progress', 'data-value': pct }, fill),
			el('p', {}, p.progress === null ? 'not reported' : `${pct}%`));
	}
	main.append(el('h2', {}, 'Timeline'), timeline(j, errors));
	main.append(el('h2', {}, 'Input'), el('pre', { id: 'input' }, input),
		el('h2', {}, 'Result'), el('pre', { id: 'result' }, typeof result === 'string' ? result : JSON.stringify(result)),
		el('h2', {}, 'Errors, every attempt'), el('pre', { id: 'errors' }, Array.isArray(errors) ? errors.join('\n') : errors));
	return j.status === 'processing' || j.status === 'queued';
}

async function queues(main) {
	const doc = await api('GET', '/v1/queues');
	const s = await api('GET', '/v1/stats');
	// each queue's rate: its last whole minute (the entry before the one under way)
	const rates = await Promise.all(doc.queues.map((q) =>
		api('GET', `/v1/stats/history?minutes=2&queue=${encodeURIComponent(q.name)}`).then((d) => d.minutes[d.minutes.length - 2] || null)));
	main.append(el('h1', {}, 'Queues'), el('table', { id: 'queue-list' },
		el('tr', {}, ['queue', 'strategy', 'queued', 'processing', 'added/min', 'finished/min', 'paused', ''].map((h) => el('th', {}, h))),
		doc.queues.map((q, i) => {
			const c = s.queues[q.name] || {}, m = rates[i];
			return el('tr', { 'data-queue': q.name }, el('td', {}, q.name), el('td', {}, q.strategy),
				el('td', {}, c.queued || 0), el('td', {}, c.processing || 0),
				el('td', { class: 'added-rate' }, m ? m.added : 0), el('td', { class: 'finished-rate' }, m ? m.completed + m.failed : 0),
				el('td', { class: 'paused' }, q.paused ? 'paused' : 'running'),
				el('td', {}, button(q.paused ? 'resume' : 'pause',
					() => api('POST', `/v1/queues/${q.name}/${q.paused ? 'resume' : 'pause'}`), canAdmin())));
		})));
	return true;
}

async function cron(main) {
	const doc = await api('GET', '/v1/cron');
	const next = await Promise.all(doc.cron.map((c) => (c.schedule
		? api('GET', `/v1/cron/${c.id}/next?count=${NEXT_FIRES}`).then((d) => d.next).catch(() => [])
		: [])));
	main.append(el('h1', {}, 'Cron'), el('table', { id: 'cron-list' },
		el('tr', {}, ['id', 'task', 'schedule', 'next fires', 'runs', 'last run', 'its result', 'ended', 'paused', ''].map((h) => el('th', {}, h))),
		doc.cron.map((c, i) => el('tr', { 'data-id': c.id }, el('td', {}, el('a', { href: `#/job/${c.id}` }, c.id)), el('td', {}, c.task),
			el('td', {}, c.schedule || ''),
			el('td', { class: 'next' }, next[i].length ? next[i].flatMap((t, k) => (k ? [el('br'), t] : [t])) : c.next_fire || ''), el('td', {}, c.fires),
			el('td', {}, c.last_run ? el('a', { href: `#/job/${c.last_run}` }, c.last_run) : 'none yet'),
			c.last_run_status ? statusCell(c.last_run_status) : el('td', {}, c.last_run ? '(not kept)' : ''),
			el('td', {}, c.last_run_finished || ''), el('td', {}, c.paused ? 'paused' : ''),
			el('td', {}, button(c.paused ? 'resume' : 'pause', () => api('POST', `/v1/cron/${c.id}/${c.paused ? 'resume' : 'pause'}`), canWrite()))))));
	return false;
}

async function hosts(main) {
	const doc = await api('GET', '/v1/hosts');
	main.append(el('h1', {}, 'Hosts'), doc.hosts.length ? el('table', { id: 'host-list' },
		el('tr', {}, ['host', 'pid', 'instance', 'queues and strategies', 'workers', 'jobs running', 'started', 'heartbeat', 'state'].map((x) => el('th', {}, x))),
		doc.hosts.map((h) => el('tr', { 'data-instance': h.instance, class: h.gone ? 'gone' : '' }, el('td', {}, h.name), el('td', {}, h.pid),
			el('td', {}, h.instance), el('td', {}, h.strategy), el('td', {}, h.workers), el('td', {}, h.running),
			el('td', {}, h.started), el('td', {}, h.heartbeat), el('td', {}, h.gone ? 'gone' : 'alive'))))
		: el('p', { id: 'host-list' }, 'No host is processing jobs of this store.'));
	return true;
}

const PAGES = { overview, jobs, job, queues, cron, hosts };

async function route() {
	clearTimeout(timer);
	if (!session) return;
	const [path, query] = (location.hash.slice(1) || '/overview').split('?');
	const [, page, arg] = path.split('/');
	for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('on', a.getAttribute('href') === `#/${page}`);
	const main = el('main', { id: 'main' });
	let live = false;
	try {
		live = await (PAGES[page] || overview)(main, page === 'job' ? arg : new URLSearchParams(query || ''));
	} catch (e) {
		main.append(el('p', { class: 'error' }, e.message));
	}
	if (notice) main.prepend(el('p', { id: 'notice', class: notice.error ? 'error' : 'notice' }, notice.text));
	$('#main').replaceWith(main);
	if (live) timer = setTimeout(route, POLL_MS);
}

function showSignin() {
	session = null;
	$('#signin').hidden = false;
	$('#main').replaceChildren();
	$('#who').textContent = '';
}

$('#signin').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const r = await fetch('/ui/session', { method: 'POST', credentials: 'same-origin',
		headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: $('#token').value }) });
	const doc = await r.json().catch(() => null);
	if (!r.ok) { $('#signin-error').textContent = doc && doc.error ? doc.error.message : `HTTP ${r.status}`; return; }
	$('#token').value = '';
	signedIn(doc);
});

function signedIn(doc) {
	session = doc;
	$('#signin').hidden = true;
	$('#who').textContent = `${doc.name} (${doc.scope})`;
	route();
}

window.addEventListener('hashchange', () => { notice = null; route(); });
fetch('/ui/session', { credentials: 'same-origin' }).then(async (r) => {
	if (r.ok) signedIn(await r.json()); else showSignin();
});
