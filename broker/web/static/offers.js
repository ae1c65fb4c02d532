// The offers table: the API's own filters as a form, mirrored in the page's query string so a
// filtered view can be shared as a link, and re-queried as the user types.

import { apiGet, errorMessage } from "./api.js";
import { cell, el, percent, setRows, setStatus } from "./dom.js";

const FIELDS = [
  "gpu", "provider", "region", "tier", "max_price", "min_vram", "gpu_count", "min_gpu_count",
  "max_interruption", "instance_type", "available", "sort", "limit",
];
// Fields the API takes more than once; the form holds them comma-separated.
const REPEATABLE = new Set(["gpu", "provider"]);
const DEFAULTS = { available: "true", sort: "price" };
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

function offerRow(offer) {
  const provider = el("td", {}, offer.provider);
  if (offer.stale) {
    provider.append(el("span", { class: "stale", title: "last refresh failed" }, "stale"));
  }
  const spot = offer.tier === "spot";
  return el(
    "tr",
    { "data-offer-id": offer.id },
    cell(offer.gpu),
    cell(offer.gpu_count, "num"),
    cell(`${offer.vram_gb} GB`, "num"),
    cell(offer.price_per_gpu_hour, "num"),
    cell(offer.effective_price_per_gpu_hour, "num"),
    cell(spot ? "spot" : "on-demand"),
    cell(spot ? `${percent(offer.interruption_probability)} (${riskBucket(offer.interruption_probability)})` : "-", "num"),
    provider,
    cell(offer.region),
    cell(offer.id, "id"),
  );
}

function providerProblems(providers) {
  return Object.entries(providers || {})
    .filter(([, status]) => status.status !== "ok")
    .map(([name, status]) => `${name}: ${status.status}${status.error ? ` (${status.error})` : ""}`);
}

export class OffersView {
  constructor(onFiltersChange) {
    this.form = document.getElementById("offer-filters");
    this.table = document.getElementById("offers-table");
    this.body = this.table.querySelector("tbody");
    this.status = document.getElementById("offers-status");
    this.more = document.getElementById("offers-more");
    this.onFiltersChange = onFiltersChange;
    this.sequence = 0;
    this.cursor = null;
    this.timer = null;
    this.form.addEventListener("input", () => this.schedule());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.filtersChanged();
    });
    this.more.addEventListener("click", () => this.load(true));
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
    const params = this.params();
    if (append && this.cursor) {
      params.push(["cursor", this.cursor]);
    }
    this.table.dataset.state = "loading";
    const result = await apiGet("/v1/offers", params);
    if (sequence !== this.sequence) {
      return;
    }
    if (!result.ok) {
      setRows(this.body, []);
      this.more.hidden = true;
      setStatus(this.status, errorMessage(result), true);
      this.table.dataset.state = "error";
      return;
    }
    const rows = result.body.data.map(offerRow);
    if (append) {
      this.body.append(...rows);
    } else {
      setRows(this.body, rows);
    }
    this.cursor = result.body.next_cursor;
    this.more.hidden = !this.cursor;
    const shown = this.body.rows.length;
    const notes = providerProblems(result.body.providers);
    const summary = `${shown} offer${shown === 1 ? "" : "s"}${this.cursor ? " (more available)" : ""}`;
    setStatus(this.status, [summary, ...notes].join(" · "));
    this.table.dataset.state = "ready";
  }
}
