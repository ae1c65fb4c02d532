// The signed-in part: the account's wallet and rentals, refreshed while the key is set.
//
// Rentals may not be served by every broker version: a 404 on the list says so plainly.

import { apiGet, clearKey, errorMessage, getKey, setKey } from "./api.js";
import { cell, el, localTime, setRows, setStatus } from "./dom.js";

const REFRESH_MS = 10_000;
const STATUSES = new Set(["provisioning", "running", "stopped", "interrupted", "terminated", "failed"]);

function rentalRow(rental) {
  const status = el("span", { class: "rental-status" }, rental.status);
  if (STATUSES.has(rental.status)) {
    status.classList.add(rental.status);
  }
  const count = rental.gpu_count && rental.gpu_count > 1 ? `${rental.gpu_count}× ` : "";
  return el(
    "tr",
    { "data-rental-id": rental.id },
    cell(rental.id, "id"),
    el("td", {}, status),
    cell(`${count}${rental.gpu ?? "-"}`),
    cell(rental.provider),
    cell(rental.tier),
    cell(rental.price_per_hour, "num"),
    cell(rental.cost, "num"),
    cell(localTime(rental.started_at || rental.created_at)),
  );
}

export class AccountView {
  constructor() {
    this.section = document.getElementById("account");
    this.status = document.getElementById("account-status");
    this.rentalsStatus = document.getElementById("rentals-status");
    this.rentalsTable = document.getElementById("rentals-table");
    this.form = document.getElementById("key-form");
    this.input = document.getElementById("api-key");
    this.forget = document.getElementById("key-forget");
    this.timer = null;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = this.input.value.trim();
      this.input.value = "";
      if (key) {
        setKey(key);
        this.start();
      }
    });
    this.forget.addEventListener("click", () => {
      clearKey();
      this.stop();
    });
  }

  start() {
    if (!getKey()) {
      return;
    }
    this.section.hidden = false;
    this.forget.hidden = false;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
    this.refresh();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.section.hidden = true;
    this.forget.hidden = true;
    for (const id of ["wallet-balance", "wallet-held", "wallet-available"]) {
      document.getElementById(id).textContent = "-";
    }
    setRows(this.rentalsTable.querySelector("tbody"), []);
  }

  async refresh() {
    await Promise.all([this.refreshWallet(), this.refreshRentals()]);
  }

  async refreshWallet() {
    const result = await apiGet("/v1/wallet", [], { auth: true });
    if (!result.ok) {
      setStatus(this.status, errorMessage(result), true);
      return;
    }
    const wallet = result.body;
    document.getElementById("wallet-balance").textContent = `${wallet.balance} ${wallet.currency}`;
    document.getElementById("wallet-held").textContent = wallet.held;
    document.getElementById("wallet-available").textContent = wallet.available;
    setStatus(this.status, `updated ${new Date().toLocaleTimeString()}`);
  }

  async refreshRentals() {
    const result = await apiGet("/v1/rentals", [], { auth: true });
    if (result.status === 404) {
      this.rentalsTable.hidden = true;
      setStatus(this.rentalsStatus, "rentals are not available on this broker");
      return;
    }
    if (!result.ok) {
      this.rentalsTable.hidden = true;
      setStatus(this.rentalsStatus, errorMessage(result), true);
      return;
    }
    const rentals = result.body.data || [];
    setRows(this.rentalsTable.querySelector("tbody"), rentals.map(rentalRow));
    this.rentalsTable.hidden = rentals.length === 0;
    setStatus(this.rentalsStatus, rentals.length ? "" : "no rentals yet");
  }
}
