// A log-log line plot as a standalone SVG file, written by hand (as svg-cdf.ts): latency against offered rate,
// as the paper's cold-start sweep figure draws it. Measured series are lines with points; reference series (a
// published system) are dashed.
import { COLORS, decadeLabel, escape, fmt, logXGrid, svgHead } from './svg.js';

export interface XySeries {
  readonly label: string;
  /** [x, y], ascending in x. */
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
}

export interface XyPlot {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly XySeries[];
  /** A horizontal line, e.g. the 1 s bound. */
  readonly yMark?: { readonly y: number; readonly label: string };
}

const W = 720;
/** Height of the plot area, px; the legend below it grows with the series. */
const PLOT_H = 310;
const M = { left: 72, right: 24, top: 40, bottom: 70 };

export function xySvg(plot: XyPlot): string {
  const xs = plot.series.flatMap((s) => s.points.map(([x]) => x)).filter((x) => x > 0);
  const ys = [...plot.series.flatMap((s) => s.points.map(([, y]) => y)), ...(plot.yMark ? [plot.yMark.y] : [])].filter((y) => y > 0);
  const range = (v: number[]) => {
    const lo = Math.floor(Math.log10(Math.min(...(v.length > 0 ? v : [1]))));
    const hi = Math.ceil(Math.log10(Math.max(...(v.length > 0 ? v : [10]))));
    return [lo, hi > lo ? hi : lo + 1] as const;
  };
  const [xlo, xhi] = range(xs);
  const [ylo, yhi] = range(ys);
  const pw = W - M.left - M.right;
  const ph = PLOT_H;
  const H = M.top + ph + M.bottom + Math.ceil(plot.series.length / 2) * 16;
  const x = (v: number) => M.left + ((Math.log10(v) - xlo) / (xhi - xlo)) * pw;
  const y = (v: number) => M.top + (1 - (Math.log10(v) - ylo) / (yhi - ylo)) * ph;
  const out: string[] = [...svgHead(W, H, plot.title), ...logXGrid(x, xlo, xhi, M.top, ph)];
  for (let d = ylo; d <= yhi; d++) {
    out.push(`<line x1="${M.left}" y1="${fmt(y(10 ** d))}" x2="${M.left + pw}" y2="${fmt(y(10 ** d))}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${fmt(y(10 ** d) + 4)}" text-anchor="end">${decadeLabel(d)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${M.top + ph + 36}" text-anchor="middle">${escape(plot.xLabel)} (log scale)</text>`);
  out.push(`<text x="18" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${M.top + ph / 2})">${escape(plot.yLabel)} (log scale)</text>`);
  if (plot.yMark) {
    out.push(`<line x1="${M.left}" y1="${fmt(y(plot.yMark.y))}" x2="${M.left + pw}" y2="${fmt(y(plot.yMark.y))}" stroke="#888" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${M.left + pw - 4}" y="${fmt(y(plot.yMark.y) - 4)}" text-anchor="end" fill="#666">${escape(plot.yMark.label)}</text>`);
  }
  const legend: string[] = [];
  plot.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const pts = s.points.filter(([px, py]) => px > 0 && py > 0);
    if (pts.length > 0) {
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.map(([px, py]) => `${fmt(x(px))},${fmt(y(py))}`).join(' ')}"/>`);
      for (const [px, py] of pts) out.push(`<circle cx="${fmt(x(px))}" cy="${fmt(y(py))}" r="3" fill="${color}"/>`);
    }
    legend.push(`<g><line x1="0" y1="0" x2="24" y2="0" stroke="${color}" stroke-width="2"${dash}/><text x="30" y="4">${escape(s.label)}</text></g>`);
  });
  legend.forEach((g, i) => out.push(`<g transform="translate(${M.left + (i % 2) * (pw / 2)} ${M.top + ph + 58 + Math.floor(i / 2) * 16})">${g}</g>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
