// The GPU overview (`GET /v1/gpus`): one row per model, with shortcuts to its offers and chart.

import { apiGet, errorMessage } from "./api.js";
import { cell, el, setRows, setStatus, tableBody } from "./dom.js";

function gpuRow(row, { onOffers, onChart }) {
  const actions = el("td");
  const offers = el("button", { type: "button" }, "Offers");
  offers.addEventListener("click", () => onOffers(row.gpu));
  actions.append(offers);
  if (row.min_spot_price !== null) {
    const chart = el("button", { type: "button" }, "Spot chart");
    chart.addEventListener("click", () => onChart(row.gpu));
    actions.append(" ", chart);
  }
  return el(
    "tr",
    {},
    cell(row.gpu),
    cell(`${row.vram_gb} GB`, "num"),
    cell(row.offers, "num"),
    cell(row.min_on_demand_price, "num"),
    cell(row.min_spot_price, "num"),
    cell(row.providers.join(", ")),
    actions,
  );
}

// Load and show the overview; resolves to its rows (empty when the request failed).
export async function loadGpus(handlers) {
  const status = document.getElementById("gpus-status");
  const result = await apiGet("/v1/gpus");
  if (!result.ok) {
    setStatus(status, errorMessage(result), true);
    return [];
  }
  const rows = result.body.data;
  setRows(tableBody("gpus-table"), rows.map((row) => gpuRow(row, handlers)));
  setStatus(status, rows.length ? "" : "the catalog is empty: no provider has reported offers yet");
  return rows;
}
