// A line chart drawn as SVG: series of numbers over the same x steps.
const NS = 'http://www.w3.org/2000/svg';

export function lineChart(series, { width = 640, height = 160, unit = 'per interval' } = {}) {
	const svg = document.createElementNS(NS, 'svg');
	svg.setAttribute('class', 'chart');
	svg.setAttribute('width', width);
	svg.setAttribute('height', height);
	svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
	const n = Math.max(2, ...series.map((s) => s.values.length));
	const max = Math.max(1, ...series.flatMap((s) => s.values));
	for (const s of series) {
		const line = document.createElementNS(NS, 'polyline');
		line.setAttribute('class', s.name);
		line.dataset.values = s.values.join(',');
		line.setAttribute('points', s.values.map((v, i) =>
			`${(i * (width - 10)) / (n - 1) + 5},${height - 5 - (v * (height - 20)) / max}`).join(' '));
		svg.appendChild(line);
	}
	const label = document.createElementNS(NS, 'text');
	label.setAttribute('x', 8);
	label.setAttribute('y', 14);
	label.textContent = `max ${max} ${unit}`;
	svg.appendChild(label);
	return svg;
}
