// What the hand-written plots (svg-cdf.ts, svg-xy.ts) share: the palette, escaping and number format, the
// document's head, and the grid of a log-scaled x axis, one line and label per decade.

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

export const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** A coordinate with one decimal, px. */
export const fmt = (x: number) => (Math.round(x * 10) / 10).toString();

/** The label of 10^decade: plain where short (0.001 to 100000), else 1eN. */
export function decadeLabel(decade: number): string {
  const v = 10 ** decade;
  if (decade >= 0 && decade < 6) return String(v);
  if (decade < 0 && decade > -4) return v.toFixed(-decade);
  return `1e${decade}`;
}

/** The opening tag, a white background and the title, centred. */
export function svgHead(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escape(title)}</text>`,
  ];
}

/** A vertical grid line and its label under the plot area (top `top`, height `height`) for every decade lo..hi. */
export function logXGrid(x: (v: number) => number, lo: number, hi: number, top: number, height: number): string[] {
  const out: string[] = [];
  for (let d = lo; d <= hi; d++) {
    out.push(`<line x1="${fmt(x(10 ** d))}" y1="${top}" x2="${fmt(x(10 ** d))}" y2="${top + height}" stroke="#ddd"/>`);
    out.push(`<text x="${fmt(x(10 ** d))}" y="${top + height + 16}" text-anchor="middle">${decadeLabel(d)}</text>`);
  }
  return out;
}
