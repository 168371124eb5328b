/**
 * The /dashboard page: self-contained HTML and JavaScript (no downloads) that polls
 * /api/series every second and draws three canvas charts: hit rate per tier, latency per tier
 * (p50 and p99, log scale) and requests against origin calls per second.
 */
export function dashboardHtml(title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<style>
  :root { --bg: #0f172a; --panel: #111c33; --text: #e2e8f0; --muted: #94a3b8; --grid: #1e2b47; }
  * { box-sizing: border-box; }
  body { margin: 0; padding: 20px 24px; background: var(--bg); color: var(--text); font: 14px/1.4 system-ui, sans-serif; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: var(--muted); margin-bottom: 16px; }
  .tiles { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin-bottom: 16px; }
  .tile { background: var(--panel); border-radius: 8px; padding: 10px 14px; }
  .tile b { display: block; font-size: 22px; }
  .tile span { color: var(--muted); font-size: 12px; }
  .charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
  .chart { background: var(--panel); border-radius: 8px; padding: 12px 14px; }
  .chart.wide { grid-column: span 2; }
  .chart h2 { font-size: 14px; margin: 0 0 6px; font-weight: 600; }
  .legend { color: var(--muted); font-size: 12px; margin-bottom: 4px; }
  .legend i { display: inline-block; width: 14px; height: 3px; margin: 0 4px 3px 10px; vertical-align: middle; }
  canvas { width: 100%; height: 220px; display: block; }
  a { color: #7dd3fc; }
</style>
</head>
<body>
<h1>${title}</h1>
<div class="sub" id="sub">waiting for data…</div>
<div class="tiles">
  <div class="tile"><b id="t-rps">–</b><span>requests / s</span></div>
  <div class="tile"><b id="t-cache">–</b><span>served from cache</span></div>
  <div class="tile"><b id="t-l1">–</b><span>answered by L1 (memory)</span></div>
  <div class="tile"><b id="t-origin">–</b><span>origin calls / s</span></div>
  <div class="tile"><b id="t-stale">–</b><span>stale reads (after a write)</span></div>
</div>
<div class="charts">
  <div class="chart"><h2>Hit rate per tier</h2><div class="legend" id="l-hit"></div><canvas id="c-hit"></canvas></div>
  <div class="chart"><h2>Service time per tier (p50 solid, p99 dashed, log scale)</h2><div class="legend" id="l-lat"></div><canvas id="c-lat"></canvas></div>
  <div class="chart wide"><h2>Requests and origin calls per second</h2><div class="legend" id="l-rate"></div><canvas id="c-rate"></canvas></div>
</div>
<div class="sub" id="links" style="margin-top:14px"></div>
<script>
const COLORS = { memory: '#34d399', redis: '#f87171', origin: '#fbbf24', requests: '#7dd3fc', total: '#c084fc', writes: '#94a3b8' };
const state = { points: 0, drawn: {} };
window.__dashboard = state;

function legend(id, items) {
  document.getElementById(id).innerHTML = items.map(([label, color]) => '<i style="background:' + color + '"></i>' + label).join('');
}

function chart(id, series, options) {
  const canvas = document.getElementById(id);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const left = 52, right = 10, top = 8, bottom = 22;
  const xs = series.length ? series[0].points.map((p) => p[0]) : [];
  const xmin = Math.min(...xs), xmax = Math.max(...xs, xmin + 1);
  const values = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => v > 0 || !options.log);
  let ymin = options.min ?? 0, ymax = options.max ?? Math.max(1, ...values) * 1.1;
  if (options.log) {
    ymin = Math.pow(10, Math.floor(Math.log10(Math.max(0.001, Math.min(...values, 1)))));
    ymax = Math.pow(10, Math.ceil(Math.log10(Math.max(...values, 1))));
  }
  const y = (v) => {
    const f = options.log ? (Math.log10(Math.max(v, ymin)) - Math.log10(ymin)) / (Math.log10(ymax) - Math.log10(ymin)) : (v - ymin) / (ymax - ymin);
    return top + (1 - f) * (height - top - bottom);
  };
  const x = (v) => left + ((v - xmin) / (xmax - xmin)) * (width - left - right);
  ctx.strokeStyle = getComputedStyle(document.body).getPropertyValue('--grid');
  ctx.fillStyle = '#94a3b8';
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  const ticks = options.log
    ? Array.from({ length: Math.round(Math.log10(ymax / ymin)) + 1 }, (_, i) => ymin * Math.pow(10, i))
    : Array.from({ length: 5 }, (_, i) => ymin + ((ymax - ymin) * i) / 4);
  for (const tick of ticks) {
    ctx.beginPath(); ctx.moveTo(left, y(tick)); ctx.lineTo(width - right, y(tick)); ctx.stroke();
    ctx.fillText(options.format(tick), 4, y(tick) + 4);
  }
  ctx.fillText(Math.round(xmin) + ' s', left, height - 6);
  ctx.fillText(Math.round(xmax) + ' s', width - right - 30, height - 6);
  let drawn = 0;
  for (const s of series) {
    const points = s.points.filter((p) => !options.log || p[1] > 0);
    if (points.length === 0) continue;
    ctx.strokeStyle = s.color; ctx.lineWidth = 2; ctx.setLineDash(s.dashed ? [5, 4] : []);
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[1])) : ctx.moveTo(x(p[0]), y(p[1]))));
    if (points.length === 1) ctx.arc(x(points[0][0]), y(points[0][1]), 2, 0, 2 * Math.PI);
    ctx.stroke();
    drawn++;
  }
  ctx.setLineDash([]);
  state.drawn[id] = drawn;
}

const pct = (v) => v.toFixed(0) + '%';
const ms = (v) => (v >= 1 ? v.toFixed(v >= 10 ? 0 : 1) + ' ms' : (v * 1000).toFixed(0) + ' µs');
const num = (v) => (v >= 1000 ? (v / 1000).toFixed(1) + 'k' : v.toFixed(0));

async function refresh() {
  let data;
  try {
    data = await (await fetch('/api/series', { cache: 'no-store' })).json();
  } catch { return; }
  const points = data.points;
  state.points = points.length;
  document.getElementById('sub').textContent = data.description;
  document.getElementById('links').innerHTML = 'Prometheus metrics: ' + data.instances.map((i) => '<a href="' + i.url + '/metrics">' + i.name + '</a>').join(' · ');
  if (points.length === 0) return;
  const last = points[points.length - 1];
  const sum = (f) => points.reduce((a, p) => a + f(p), 0);
  const requests = sum((p) => p.requests);
  document.getElementById('t-rps').textContent = num(last.requests / last.seconds);
  document.getElementById('t-cache').textContent = requests ? pct(100 * (1 - sum((p) => p.answered.origin) / requests)) : '–';
  document.getElementById('t-l1').textContent = requests ? pct((100 * sum((p) => p.answered.memory)) / requests) : '–';
  document.getElementById('t-origin').textContent = num(last.originCalls / last.seconds);
  document.getElementById('t-stale').textContent = String(sum((p) => p.staleReads));
  const line = (f, color, dashed) => ({ color, dashed, points: points.map((p) => [p.t, f(p)]) });
  legend('l-hit', [['L1 hit rate', COLORS.memory], ['Redis hit rate (of L1 misses)', COLORS.redis], ['all tiers', COLORS.total]]);
  chart('c-hit', [
    line((p) => p.hitRate.memory, COLORS.memory),
    line((p) => p.hitRate.redis, COLORS.redis),
    line((p) => p.hitRate.total, COLORS.total),
  ], { min: 0, max: 100, format: pct });
  legend('l-lat', [['L1 hit', COLORS.memory], ['Redis hit', COLORS.redis], ['origin (database)', COLORS.origin]]);
  chart('c-lat', ['memory', 'redis', 'origin'].flatMap((tier) => [
    line((p) => p.latency[tier].p50, COLORS[tier]),
    line((p) => p.latency[tier].p99, COLORS[tier], true),
  ]), { log: true, format: ms });
  legend('l-rate', [['requests / s', COLORS.requests], ['origin calls / s', COLORS.origin], ['writes / s', COLORS.writes]]);
  chart('c-rate', [
    line((p) => p.requests / p.seconds, COLORS.requests),
    line((p) => p.originCalls / p.seconds, COLORS.origin),
    line((p) => p.writes / p.seconds, COLORS.writes),
  ], { min: 0, format: num });
}
refresh();
setInterval(refresh, 1000);
window.addEventListener('resize', refresh);
</script>
</body>
</html>
`;
}
