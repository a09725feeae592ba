// A tiny inline-SVG line chart: a few series over the same buckets, scaled to the
// largest value so the shape is visible even at low rates.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/**
 * series: [{ values: number[], cls: 'enq' | 'done', label }]; returns an <svg>.
 * `title` becomes the hover text.
 */
export function lineChart(series, { width = 180, height = 34, title = '' } = {}) {
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  if (title) {
    const t = svg('title', {});
    t.textContent = title;
    root.append(t);
  }
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const max = Math.max(0, ...series.flatMap((s) => s.values));
  const pad = 2;
  root.append(svg('line', { x1: 0, x2: width, y1: height - pad, y2: height - pad, class: 'axis' }));
  if (n < 2) return root;
  const x = (i) => (i / (n - 1)) * width;
  const y = (v) => height - pad - (max > 0 ? (v / max) * (height - 2 * pad) : 0);
  for (const s of series) {
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    root.append(svg('polyline', { points, class: `line ${s.cls}` }));
  }
  return root;
}
