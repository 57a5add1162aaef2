// chart.js - small line charts in inline SVG (no library, no canvas).
//
// lineChart({title, unit, series: [{name, className}]}) returns {el,
// update(points)} where points are [{t, values: [v per series]}].  The
// chart says its latest values in text too (for screen readers and for
// anyone reading figures rather than lines).

import {h, s, clear} from './dom.js';

const W = 320;
const H = 120;
const PAD = {l: 4, r: 4, t: 8, b: 4};

function fmt(v, unit) {
  if (!Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  const n = abs >= 100 ? v.toFixed(0) : abs >= 10 ? v.toFixed(1) : v.toFixed(2);
  return n + (unit ? ' ' + unit : '');
}

export function lineChart({title, unit, series}) {
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', preserveAspectRatio: 'none'});
  const legend = h('p', {class: 'chart-legend'});
  const scale = h('span', {class: 'chart-scale'});
  const el = h('figure', {class: 'chart'},
    h('figcaption', null, h('span', {class: 'chart-title'}, title), scale), svg, legend);

  function update(points) {
    clear(svg);
    clear(legend);
    const finite = points.flatMap((p) => p.values.filter(Number.isFinite));
    const max = Math.max(1e-9, ...finite) * 1.1;
    const t0 = points.length ? points[0].t : 0;
    const t1 = points.length ? points[points.length - 1].t : 1;
    const x = (t) => PAD.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.l - PAD.r);
    const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
    for (let g = 1; g < 4; g++) {
      const gy = PAD.t + ((H - PAD.t - PAD.b) * g) / 4;
      svg.append(s('line', {x1: 0, x2: W, y1: gy, y2: gy, class: 'chart-grid'}));
    }
    const latest = [];
    series.forEach((ser, i) => {
      const pts = points.filter((p) => Number.isFinite(p.values[i])).map((p) => `${x(p.t).toFixed(1)},${y(p.values[i]).toFixed(1)}`);
      if (pts.length === 1) pts.push(pts[0].replace(/^[^,]+/, String(W - PAD.r)));
      if (pts.length) svg.append(s('polyline', {points: pts.join(' '), class: 'chart-line ' + (ser.className || 's' + i)}));
      const last = [...points].reverse().find((p) => Number.isFinite(p.values[i]));
      const v = last ? last.values[i] : NaN;
      latest.push(ser.name + ' ' + fmt(v, unit));
      legend.append(h('span', {class: 'chart-key ' + (ser.className || 's' + i)}, ser.name + ': ', h('strong', null, fmt(v, unit))));
    });
    scale.textContent = finite.length ? 'max ' + fmt(max / 1.1, unit) : 'waiting for samples';
    svg.setAttribute('aria-label', title + ': ' + (points.length ? latest.join(', ') : 'no samples yet'));
  }

  update([]);
  return {el, update};
}
