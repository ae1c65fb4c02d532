// Renting an offer from its row: a dialog with what it costs (price, hold, risk), the workload,
// and the rental's limits; then the rental key, shown once, with a copy button.
//
// The request names the price the user saw (`expected_price`): when the offer got dearer, the
// broker answers 409 `price_changed` and the dialog shows the new price before anything is paid.

import { apiSend, connectHref, errorMessage, getKey, rememberRentalKey } from "./api.js";
import { byId, el, setStatus, usd } from "./dom.js";
import { riskText } from "./offers.js";

const HOLD_HOURS = 1; // the broker's default minimum hold (GPUBROKER_MIN_HOLD_SECONDS)

function newIdempotencyKey() {
  return crypto.randomUUID();
}

function positive(value) {
  const number = Number(value);
  return value.trim() !== "" && Number.isFinite(number) && number > 0 ? number : null;
}

// The rent request's body from the dialog's form; throws a message for a field that is wrong.
export function rentBody(form, offer, expectedPrice) {
  const value = (name) => form.elements.namedItem(name).value.trim();
  const body = { offer_id: offer.id, expected_price: expectedPrice };
  if (value("image")) {
    body.image = value("image");
  }
  if (value("model")) {
    body.model = value("model");
  }
  const ports = value("ports").split(",").map((p) => p.trim()).filter(Boolean);
  if (ports.some((p) => !/^\d+$/.test(p))) {
    throw new Error("ports: whole numbers separated by commas, e.g. 8000, 8080");
  }
  if (ports.length) {
    body.ports = ports.map(Number);
  }
  const limits = [
    ["max_hours", "max duration in hours", (v) => ["max_duration_seconds", Math.round(v * 3600)]],
    ["max_cost", "max cost in USD", () => ["max_cost", value("max_cost")]],
    ["idle_minutes", "idle timeout in minutes", (v) => ["idle_timeout_seconds", Math.round(v * 60)]],
  ];
  for (const [name, label, toField] of limits) {
    if (!value(name)) {
      continue;
    }
    const number = positive(value(name));
    if (number === null) {
      throw new Error(`${label}: a number above zero`);
    }
    const [field, converted] = toField(number);
    body[field] = converted;
  }
  return body;
}

export class RentDialog {
  constructor(onRented) {
    Object.assign(this, byId({ dialog: "rent-dialog", form: "rent-form", summary: "rent-summary" }));
    Object.assign(this, byId({ status: "rent-status", confirm: "rent-confirm", result: "rent-result" }));
    this.onRented = onRented;
    this.offer = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rent();
    });
    document.getElementById("rent-cancel").addEventListener("click", () => this.dialog.close());
    document.getElementById("rent-done").addEventListener("click", () => this.dialog.close());
    document.getElementById("rental-key-copy").addEventListener("click", () => this.copyKey());
  }

  open(offer) {
    this.offer = offer;
    this.expectedPrice = offer.price_per_gpu_hour;
    this.idempotencyKey = newIdempotencyKey();
    this.form.hidden = false;
    this.result.hidden = true;
    this.confirm.disabled = false;
    document.getElementById("rent-title").textContent =
      `Rent ${offer.gpu_count}× ${offer.gpu}${offer.slice ? ` (slice: ${offer.slice})` : ""} from ${offer.provider}`;
    this.showPrice(offer.price_per_gpu_hour);
    if (getKey()) {
      setStatus(this.status, "");
    } else {
      setStatus(this.status, "enter your API key at the top of the page first", true);
      this.confirm.disabled = true;
    }
    this.dialog.showModal();
  }

  showPrice(pricePerGpuHour) {
    const offer = this.offer;
    const perHour = Number(pricePerGpuHour) * offer.gpu_count;
    const rows = [
      ["Price", `${usd(pricePerGpuHour)}/GPU-h × ${offer.gpu_count} = ${usd(perHour)}/h`],
      ["Effective", `${usd(offer.effective_price_per_gpu_hour)}/GPU-h with interruptions counted`],
      ["Credit hold", `${usd(perHour * HOLD_HOURS, 2)} set aside before it starts (${HOLD_HOURS} h at this price); unused credit is released`],
      ["Risk", riskText(offer)],
      ["Region", offer.region],
      ["Offer", offer.id],
    ];
    this.summary.replaceChildren(
      ...rows.map(([name, text]) => el("div", {}, el("dt", {}, name), el("dd", {}, text))),
    );
    this.confirm.textContent = `Rent for ${usd(perHour)}/h`;
  }

  async rent() {
    let body;
    try {
      body = rentBody(this.form, this.offer, this.expectedPrice);
    } catch (error) {
      setStatus(this.status, error.message, true);
      return;
    }
    this.confirm.disabled = true;
    setStatus(this.status, "renting…");
    const result = await apiSend("POST", "/v1/rentals", body, { idempotencyKey: this.idempotencyKey });
    this.confirm.disabled = false;
    const error = result.body && result.body.error;
    if (result.status === 409 && error && error.code === "price_changed") {
      // Nothing was rented: show the new price; confirming again accepts it.
      this.expectedPrice = error.price;
      this.idempotencyKey = newIdempotencyKey();
      this.showPrice(error.price);
      setStatus(
        this.status,
        `The price changed: now ${usd(error.price)}/GPU-h (you saw ${usd(error.expected_price)}). Nothing was rented; confirm to rent at the new price.`,
        true,
      );
      return;
    }
    if (!result.ok) {
      setStatus(this.status, errorMessage(result), true);
      return;
    }
    this.showRental(result.body);
    this.onRented(result.body);
  }

  showRental(rental) {
    this.form.hidden = true;
    this.result.hidden = false;
    document.getElementById("rent-result-text").textContent =
      `${rental.id} is ${rental.status} at ${usd(rental.price_per_hour)}/h on ${rental.provider}; ${usd(rental.hold, 2)} of credit is held.`;
    const keyInput = document.getElementById("rental-key");
    keyInput.value = rental.rental_key || "";
    rememberRentalKey(rental.id, rental.rental_key);
    document.getElementById("rental-connect").href = connectHref(rental);
    setStatus(document.getElementById("rental-key-status"), "");
  }

  async copyKey() {
    const input = document.getElementById("rental-key");
    const status = document.getElementById("rental-key-status");
    try {
      await navigator.clipboard.writeText(input.value);
      setStatus(status, "copied");
    } catch {
      input.select();
      setStatus(status, "selected: press Ctrl+C (⌘C) to copy");
    }
  }
}
