// A CDF plot as a standalone SVG file, written by hand: no plotting library here renders SVG in Node without a
// browser. Log-scaled x (latencies and slowdowns span orders of magnitude, as in the paper's figures), one line
// per run, and reference points (a published system's percentiles) drawn as labelled markers.
import { COLORS, escape, fmt, logXGrid, svgHead } from './svg.js';

export interface CdfSeries {
  readonly label: string;
  /** Ascending. */
  readonly sorted: ArrayLike<number>;
}

export interface CdfReference {
  readonly label: string;
  /** [x, cumulative fraction 0..1]. */
  readonly points: readonly (readonly [number, number])[];
}

export interface CdfPlot {
  readonly title: string;
  readonly xLabel: string;
  readonly series: readonly CdfSeries[];
  readonly references?: readonly CdfReference[];
  /** Values below are drawn at it (a log axis has no 0). */
  readonly floor: number;
}

const W = 720;
const H = 440;
const M = { left: 64, right: 24, top: 40, bottom: 92 };
const REFERENCE_COLOR = '#222';
/** Points drawn per series at most: a CDF of a million invocations needs no more. */
const MAX_POINTS = 600;

export function cdfSvg(plot: CdfPlot): string {
  const values: number[] = [];
  for (const s of plot.series) if (s.sorted.length > 0) values.push(Math.max(plot.floor, s.sorted[0]!), Math.max(plot.floor, s.sorted[s.sorted.length - 1]!));
  for (const r of plot.references ?? []) for (const [x] of r.points) values.push(Math.max(plot.floor, x));
  if (values.length === 0) values.push(plot.floor, plot.floor * 10);
  let lo = Math.floor(Math.log10(Math.min(...values)));
  let hi = Math.ceil(Math.log10(Math.max(...values)));
  if (hi <= lo) hi = lo + 1;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number) => M.left + ((Math.log10(Math.max(plot.floor, v)) - lo) / (hi - lo)) * pw;
  const y = (q: number) => M.top + (1 - q) * ph;
  const out: string[] = [...svgHead(W, H, plot.title), ...logXGrid(x, lo, hi, M.top, ph)];
  for (const q of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    out.push(`<line x1="${M.left}" y1="${fmt(y(q))}" x2="${M.left + pw}" y2="${fmt(y(q))}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${fmt(y(q) + 4)}" text-anchor="end">${q}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 36}" text-anchor="middle">${escape(plot.xLabel)} (log scale)</text>`);
  out.push(`<text x="16" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${M.top + ph / 2})">CDF</text>`);
  const legend: string[] = [];
  plot.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const n = s.sorted.length;
    if (n > 0) {
      const step = Math.max(1, Math.floor(n / MAX_POINTS));
      const points: string[] = [`${fmt(x(s.sorted[0]!))},${fmt(y(0))}`];
      for (let k = 0; k < n; k += step) points.push(`${fmt(x(s.sorted[k]!))},${fmt(y((k + 1) / n))}`);
      points.push(`${fmt(x(s.sorted[n - 1]!))},${fmt(y(1))}`);
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.join(' ')}"/>`);
    }
    legend.push(`<g><line x1="0" y1="0" x2="24" y2="0" stroke="${color}" stroke-width="2"/><text x="30" y="4">${escape(`${s.label} (n = ${n})`)}</text></g>`);
  });
  for (const r of plot.references ?? []) {
    for (const [px, q] of r.points) {
      const cx = x(px);
      const cy = y(q);
      out.push(`<path d="M ${fmt(cx)} ${fmt(cy - 6)} L ${fmt(cx + 6)} ${fmt(cy)} L ${fmt(cx)} ${fmt(cy + 6)} L ${fmt(cx - 6)} ${fmt(cy)} Z" fill="none" stroke="${REFERENCE_COLOR}" stroke-width="1.5"/>`);
      out.push(`<text x="${fmt(cx + 8)}" y="${fmt(cy - 6)}" font-size="10" fill="${REFERENCE_COLOR}">p${Math.round(q * 100)} ${escape(String(px))}</text>`);
    }
    legend.push(`<g><path d="M 12 -6 L 18 0 L 12 6 L 6 0 Z" fill="none" stroke="${REFERENCE_COLOR}" stroke-width="1.5"/><text x="30" y="4">${escape(r.label)}</text></g>`);
  }
  legend.forEach((g, i) => {
    const col = i % 2;
    const row = Math.floor(i / 2);
    out.push(`<g transform="translate(${M.left + col * (pw / 2)} ${M.top + ph + 56 + row * 16})">${g}</g>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
