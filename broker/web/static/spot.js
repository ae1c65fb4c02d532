// The spot section: a GPU's providers side by side (`GET /v1/spot-prices`) and a chart of their
// spot prices over time (`GET /v1/spot-prices/history`) against the cheapest on-demand level.

import { apiGet, errorMessage } from "./api.js";
import { colorClass, drawChart, providerSteps } from "./chart.js";
import { byId, cell, el, percent, setRows, setStatus, tableBody } from "./dom.js";

const DEFAULT_RANGE = "24";
const HOUR_MS = 3600 * 1000;
const PAGE_SIZE = 500;
const MAX_PAGES = 20;

// Every spot change point of `gpu` since `since` (ms), following the cursor.
async function fetchHistory(gpu, since) {
  const points = [];
  let cursor = null;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const params = [["gpu", gpu], ["tier", "spot"], ["since", new Date(since).toISOString()], ["limit", PAGE_SIZE]];
    if (cursor) {
      params.push(["cursor", cursor]);
    }
    const result = await apiGet("/v1/spot-prices/history", params);
    if (!result.ok) {
      return { ok: false, result, points };
    }
    points.push(...result.body.data);
    cursor = result.body.next_cursor;
    if (!cursor) {
      break;
    }
  }
  return { ok: true, points };
}

function comparisonRow(row, cheapest) {
  const isCheapest =
    cheapest &&
    row.spot_offer_id === cheapest.spot_offer_id &&
    row.on_demand_offer_id === cheapest.on_demand_offer_id;
  return el(
    "tr",
    { class: isCheapest ? "cheapest" : null },
    cell(row.gpu),
    cell(row.provider),
    cell(row.region),
    cell(row.spot_price, "num"),
    cell(row.on_demand_price, "num"),
    cell(row.savings_pct === null ? null : `${row.savings_pct}%`, "num"),
    cell(row.interruption_probability === null ? null : percent(row.interruption_probability), "num"),
    cell(row.risk_bucket),
    cell(row.effective_price, "num"),
  );
}

// Which is the better deal now, said plainly: on-demand when no spot offer's effective price
// (its price with interruptions counted) beats the cheapest on-demand price.
export function verdict(rows, cheapest, onDemandWins) {
  const spotRows = rows.filter((r) => r.spot_price !== null && r.effective_price !== null);
  const bestSpot = spotRows.reduce((best, r) => (best === null || Number(r.effective_price) < Number(best.effective_price) ? r : best), null);
  const onDemand = rows.filter((r) => r.on_demand_price !== null);
  const bestOnDemand = onDemand.reduce((best, r) => (best === null || Number(r.on_demand_price) < Number(best.on_demand_price) ? r : best), null);
  const wins = onDemandWins ?? (bestOnDemand !== null && (bestSpot === null || Number(bestOnDemand.on_demand_price) <= Number(bestSpot.effective_price)));
  if (wins && bestOnDemand) {
    const against = bestSpot ? `the best spot costs ${bestSpot.effective_price} effective` : "no spot offer is available";
    return `on-demand wins: ${bestOnDemand.provider}, ${bestOnDemand.region}, ${bestOnDemand.on_demand_price} on-demand; ${against}`;
  }
  if (bestSpot) {
    return `cheapest useful spot hour: ${bestSpot.provider}, ${bestSpot.region}, ${bestSpot.effective_price} effective`;
  }
  return cheapest ? `cheapest: ${cheapest.provider}, ${cheapest.region}, ${cheapest.effective_price}` : "no offer available now";
}

function cheapestOnDemand(rows) {
  const prices = rows.map((r) => r.on_demand_price).filter((p) => p !== null).map(Number);
  return prices.length ? Math.min(...prices) : null;
}

export class SpotView {
  constructor(onSelectionChange) {
    Object.assign(this, byId({ select: "spot-gpu", range: "spot-range", chart: "spot-chart" }));
    Object.assign(this, byId({ legend: "spot-legend", status: "spot-status" }));
    this.body = tableBody("spot-table");
    this.onSelectionChange = onSelectionChange;
    this.wanted = null;
    this.sequence = 0;
    this.select.addEventListener("change", () => this.changed());
    this.range.addEventListener("change", () => this.changed());
    document.getElementById("spot-form").addEventListener("submit", (event) => event.preventDefault());
  }

  restore(params) {
    this.wanted = params.get("spot_gpu");
    const range = params.get("spot_range");
    if (range && [...this.range.options].some((o) => o.value === range)) {
      this.range.value = range;
    }
  }

  params() {
    const pairs = [];
    if (this.select.value) {
      pairs.push(["spot_gpu", this.select.value]);
    }
    if (this.range.value !== DEFAULT_RANGE) {
      pairs.push(["spot_range", this.range.value]);
    }
    return pairs;
  }

  // Offer the GPUs that have spot prices; show the one in the URL, else the first.
  setGpus(rows) {
    const names = rows.filter((r) => r.min_spot_price !== null).map((r) => r.gpu);
    if (this.wanted && !names.includes(this.wanted)) {
      names.unshift(this.wanted);
    }
    this.select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
    if (!names.length) {
      setStatus(this.status, "no GPU has spot offers right now");
      return;
    }
    this.select.value = this.wanted || names[0];
    this.show();
  }

  choose(gpu) {
    if (![...this.select.options].some((o) => o.value === gpu)) {
      this.select.append(el("option", { value: gpu }, gpu));
    }
    this.select.value = gpu;
    this.changed();
    this.chart.scrollIntoView({ behavior: "smooth", block: "center" });
  }

  changed() {
    this.onSelectionChange();
    this.show();
  }

  async show() {
    const gpu = this.select.value;
    if (!gpu) {
      return;
    }
    this.sequence += 1;
    const sequence = this.sequence;
    this.chart.dataset.state = "loading";
    const until = Date.now();
    const since = until - Number(this.range.value) * HOUR_MS;
    const [comparison, history] = await Promise.all([
      apiGet("/v1/spot-prices", [["gpu", gpu]]),
      fetchHistory(gpu, since),
    ]);
    if (sequence !== this.sequence) {
      return;
    }
    if (!comparison.ok || !history.ok) {
      setStatus(this.status, errorMessage(comparison.ok ? history.result : comparison), true);
      this.chart.dataset.state = "error";
      return;
    }
    const { rows, cheapest } = comparison.body;
    const reference = cheapestOnDemand(rows);
    const steps = providerSteps(history.points, since, until);
    setRows(this.body, rows.map((row) => comparisonRow(row, cheapest)));
    drawChart(this.chart, steps, reference, since, until);
    this.drawLegend([...steps.keys()], reference);
    const best = verdict(rows, cheapest, comparison.body.on_demand_wins);
    const empty = steps.size ? "" : " · no spot price recorded in this range";
    setStatus(this.status, `${gpu}: ${best}${empty}`);
    this.chart.dataset.gpu = gpu;
    this.chart.dataset.state = "ready";
  }

  drawLegend(providers, reference) {
    const items = providers.map((provider, index) =>
      el("li", {}, el("span", { class: `swatch ${colorClass(index)}` }), provider),
    );
    if (reference !== null) {
      items.push(el("li", {}, el("span", { class: "swatch reference" }), "cheapest on-demand"));
    }
    this.legend.replaceChildren(...items);
  }
}
