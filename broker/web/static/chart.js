// The spot chart: recorded change points turned into one step line per provider, drawn in SVG.
//
// Only changes are recorded, so an offer's price holds from its point until its next one. A
// provider's line is the cheapest of its offers at each moment. Points before the chart's start
// (the API returns each offer's last one before `since`) set the level the line starts at.

import { svgEl } from "./dom.js";

const WIDTH = 800;
const HEIGHT = 320;
const MARGIN = { left: 70, right: 16, top: 16, bottom: 36 };
const PALETTE_SIZE = 8;

// Map provider -> [{t, v}] (t in ms, v in USD), providers in name order, each ending at `until`.
export function providerSteps(points, since, until) {
  const ordered = points
    .map((p) => ({ provider: p.provider, offer: p.offer_id, t: Date.parse(p.at), v: Number(p.price) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v) && p.t <= until)
    .sort((a, b) => a.t - b.t);
  const prices = new Map();
  const lines = new Map();
  for (const point of ordered) {
    if (!prices.has(point.provider)) {
      prices.set(point.provider, new Map());
      lines.set(point.provider, []);
    }
    const offers = prices.get(point.provider);
    offers.set(point.offer, point.v);
    const level = Math.min(...offers.values());
    const t = Math.max(point.t, since);
    const line = lines.get(point.provider);
    const last = line[line.length - 1];
    if (last && last.t === t) {
      last.v = level;
    } else if (!last || last.v !== level) {
      line.push({ t, v: level });
    }
  }
  const sorted = new Map([...lines.entries()].sort(([a], [b]) => a.localeCompare(b)));
  for (const line of sorted.values()) {
    line.push({ t: until, v: line[line.length - 1].v });
  }
  return sorted;
}

export function colorClass(index) {
  return `c${index % PALETTE_SIZE}`;
}

// A round tick spacing (1, 2, 2.5 or 5 times a power of ten) near `rough`, and its decimals.
function niceStep(rough) {
  const power = 10 ** Math.floor(Math.log10(rough));
  const multiple = [1, 2, 2.5, 5, 10].find((m) => m * power >= rough * 0.999);
  const step = multiple * power;
  const decimals = Math.max(2, Math.ceil(-Math.log10(step) - 1e-9) + (multiple === 2.5 ? 1 : 0));
  return { step, decimals };
}

function timeLabel(t, spanMs) {
  const date = new Date(t);
  if (spanMs <= 48 * 3600 * 1000) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

function stepPath(line, x, y) {
  const parts = [`M${x(line[0].t).toFixed(1)},${y(line[0].v).toFixed(1)}`];
  for (const step of line.slice(1)) {
    parts.push(`H${x(step.t).toFixed(1)}`, `V${y(step.v).toFixed(1)}`);
  }
  return parts.join(" ");
}

// Draw `steps` (from providerSteps) and a dashed reference level (USD or null) into `svg`.
export function drawChart(svg, steps, reference, since, until) {
  const title = svg.querySelector("title");
  svg.replaceChildren(...(title ? [title] : []));
  const values = [...steps.values()].flat().map((s) => s.v);
  if (reference !== null) {
    values.push(reference);
  }
  if (values.length === 0) {
    return;
  }
  const lowest = Math.min(...values);
  const highest = Math.max(...values);
  const spread = highest - lowest || Math.max(highest * 0.1, 0.01);
  const { step, decimals } = niceStep(spread / 4);
  const low = Math.max(0, Math.floor((lowest - spread * 0.05) / step) * step);
  const high = Math.ceil((highest + spread * 0.05) / step) * step;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (t) => MARGIN.left + ((t - since) / (until - since)) * plotWidth;
  const y = (v) => MARGIN.top + ((high - v) / (high - low)) * plotHeight;

  for (let value = low; value <= high + step / 2; value += step) {
    svg.append(
      svgEl("line", { class: "grid", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value) }),
      svgEl("text", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end" }, `$${value.toFixed(decimals)}`),
    );
  }
  for (let i = 0; i <= 4; i += 1) {
    const t = since + ((until - since) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    svg.append(
      svgEl("text", { x: x(t), y: HEIGHT - 12, "text-anchor": anchor }, timeLabel(t, until - since)),
    );
  }
  svg.append(
    svgEl("line", { class: "axis", x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: HEIGHT - MARGIN.bottom }),
    svgEl("line", {
      class: "axis", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom,
    }),
  );

  let index = 0;
  for (const [provider, line] of steps) {
    svg.append(
      svgEl(
        "path",
        { class: `series ${colorClass(index)}`, d: stepPath(line, x, y), "data-provider": provider },
        svgEl("title", {}, `${provider}: cheapest spot price`),
      ),
    );
    index += 1;
  }
  if (reference !== null) {
    svg.append(
      svgEl(
        "line",
        { class: "on-demand-ref", x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(reference), y2: y(reference) },
        svgEl("title", {}, "cheapest on-demand price"),
      ),
      svgEl(
        "text",
        { class: "ref-label", x: WIDTH - MARGIN.right - 4, y: y(reference) - 5, "text-anchor": "end" },
        `on-demand $${reference.toFixed(decimals)}`,
      ),
    );
  }
}
