// The offers table: the API's own filters as a form, mirrored in the page's query string so a
// filtered view can be shared as a link, and re-queried as the user types.

import { apiGet, errorMessage } from "./api.js";
import { Pager, byId, cell, el, numCell, percent, setStatus, tableBody } from "./dom.js";

const FIELDS = [
  "gpu", "provider", "region", "tier", "max_price", "min_vram", "gpu_count", "min_gpu_count",
  "max_interruption", "instance_type", "available", "slices", "model", "sort", "limit",
];
// Fields the API takes more than once; the form holds them comma-separated.
const REPEATABLE = new Set(["gpu", "provider"]);
const DEFAULTS = { available: "true", slices: "false", sort: "price" };
const TYPING_PAUSE_MS = 250;

// AWS's Spot Instance Advisor buckets, as the API's `risk_bucket`.
export function riskBucket(probability) {
  const buckets = [[0.05, "<5%"], [0.1, "5-10%"], [0.15, "10-15%"], [0.2, "15-20%"]];
  for (const [ceiling, label] of buckets) {
    if (probability < ceiling) {
      return label;
    }
  }
  return ">20%";
}

// "1/8 of a card" for a share that is a unit fraction, else a percentage.
export function shareOfCard(fraction) {
  const parts = Math.round(1 / fraction);
  if (parts > 1 && Math.abs(parts * fraction - 1) < 1e-6) {
    return `1/${parts} of a card`;
  }
  return `${Math.round(fraction * 100)}% of a card`;
}

export function riskText(offer) {
  if (offer.tier !== "spot") {
    return "on-demand: not interrupted by the provider";
  }
  const p = offer.interruption_probability ?? 0;
  return `${percent(p)} chance per hour of losing the instance (${riskBucket(p)})`;
}

function gpuCell(offer) {
  const node = el("td", {}, offer.gpu);
  if (offer.slice) {
    const share = offer.gpu_fraction ? `, ${shareOfCard(offer.gpu_fraction)}` : "";
    node.append(
      " ",
      el("span", { class: "slice", title: "part of a card, not a whole GPU" }, `slice: ${offer.slice}${share}`),
    );
  }
  if (offer.models && offer.models.length) {
    node.append(el("span", { class: "models" }, `serves ${offer.models.join(", ")}`));
  }
  return node;
}

function offerRow(offer, onRent) {
  const provider = el("td", {}, offer.provider);
  if (offer.stale) {
    provider.append(el("span", { class: "stale", title: "last refresh failed" }, "stale"));
  }
  const spot = offer.tier === "spot";
  const rent = el("button", { type: "button", class: "rent" }, "Rent");
  rent.disabled = !offer.available;
  rent.addEventListener("click", () => onRent(offer));
  const probability = offer.interruption_probability ?? 0;
  return el(
    "tr",
    { "data-offer-id": offer.id, class: offer.slice ? "is-slice" : null },
    gpuCell(offer),
    numCell(offer.gpu_count),
    numCell(`${offer.vram_gb} GB`, offer.vram_gb),
    numCell(offer.price_per_gpu_hour),
    numCell(offer.effective_price_per_gpu_hour),
    cell(spot ? "spot" : "on-demand"),
    spot ? numCell(`${percent(probability)} (${riskBucket(probability)})`, probability) : numCell("-", 0),
    provider,
    cell(offer.region),
    cell(offer.id, "id"),
    el("td", {}, rent),
  );
}

function providerProblems(providers) {
  return Object.entries(providers || {})
    .filter(([, status]) => status.status !== "ok")
    .map(([name, status]) => `${name}: ${status.status}${status.error ? ` (${status.error})` : ""}`);
}

export class OffersView {
  constructor(onFiltersChange, onRent) {
    this.onRent = onRent;
    this.onFiltersChange = onFiltersChange;
    Object.assign(this, byId({ form: "offer-filters", table: "offers-table", status: "offers-status" }));
    this.pages = new Pager(tableBody("offers-table"), {
      id: "offers-more",
      label: "More offers",
      onMore: () => this.load(true),
    });
    this.sequence = 0;
    this.timer = null;
    this.form.addEventListener("input", () => this.schedule());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.filtersChanged();
    });
  }

  field(name) {
    return this.form.elements.namedItem(name);
  }

  restore(params) {
    for (const name of FIELDS) {
      const value = REPEATABLE.has(name) ? params.getAll(name).join(", ") : params.get(name);
      this.field(name).value = value || DEFAULTS[name] || "";
    }
  }

  // The non-default filters as [name, value] pairs: the API's parameters and the page's URL.
  params() {
    const pairs = [];
    for (const name of FIELDS) {
      const value = this.field(name).value.trim();
      if (!value || value === DEFAULTS[name]) {
        continue;
      }
      if (REPEATABLE.has(name)) {
        for (const part of value.split(",").map((p) => p.trim()).filter(Boolean)) {
          pairs.push([name, part]);
        }
      } else {
        pairs.push([name, value]);
      }
    }
    return pairs;
  }

  setGpu(gpu) {
    this.field("gpu").value = gpu;
    this.filtersChanged();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.filtersChanged(), TYPING_PAUSE_MS);
  }

  filtersChanged() {
    clearTimeout(this.timer);
    this.onFiltersChange();
    this.load(false);
  }

  async load(append) {
    this.sequence += 1;
    const sequence = this.sequence;
    this.table.dataset.state = "loading";
    const result = await apiGet("/v1/offers", this.pages.params(this.params(), append));
    if (sequence !== this.sequence) {
      return;
    }
    if (!result.ok) {
      this.pages.clear();
      setStatus(this.status, errorMessage(result), true);
      this.table.dataset.state = "error";
      return;
    }
    this.pages.show(result.body, (offer) => offerRow(offer, this.onRent), append);
    const shown = this.pages.body.rows.length;
    const notes = providerProblems(result.body.providers);
    const summary = `${shown} offer${shown === 1 ? "" : "s"}${this.pages.cursor ? " (more available)" : ""}`;
    setStatus(this.status, [summary, ...notes].join(" · "));
    this.table.dataset.state = "ready";
  }
}
