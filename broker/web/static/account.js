// The signed-in part: the wallet with its burn rate, the rentals, the ledger and top-ups,
// refreshed while the key is set.

import { apiGet, apiSend, clearKey, errorMessage, getKey, setKey } from "./api.js";
import { Pager, byId, cell, duration, el, localTime, numCell, setStatus, tableBody, usd } from "./dom.js";
import { RentalsView } from "./rentals.js";

const REFRESH_MS = 10_000;
const SOON_MS = 1_000; // while a rental is on its way to running
const SETTLING = new Set(["provisioning"]);
const LEDGER_PAGE = 20;

// USD per hour of everything running now, and how long the available credit lasts at that rate.
export function burn(rentals, available) {
  const rate = rentals
    .filter((rental) => rental.status === "running")
    .reduce((sum, rental) => sum + Number(rental.price_per_hour), 0);
  const seconds = rate > 0 ? (Number(available) / rate) * 3600 : null;
  return { rate, seconds };
}

function ledgerRow(entry) {
  return el(
    "tr",
    { "data-entry-id": entry.id },
    el("td", { "data-sort": entry.created_at }, localTime(entry.created_at)),
    cell(entry.kind),
    numCell(entry.amount),
    numCell(entry.balance_after),
    numCell(entry.held_after),
    cell(entry.reference, "id"),
  );
}

export class AccountView {
  constructor() {
    Object.assign(this, byId({ section: "account", status: "account-status", form: "key-form", input: "api-key" }));
    Object.assign(this, byId({ forget: "key-forget", topupForm: "topup-form", topupStatus: "topup-status" }));
    this.ledger = new Pager(tableBody("ledger-table"), {
      id: "ledger-more",
      label: "More entries",
      onMore: () => this.loadLedger(true),
    });
    this.rentals = new RentalsView(() => this.refresh());
    this.timer = null;
    this.soon = null;
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
    this.topupForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.topup();
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
    for (const id of ["wallet-balance", "wallet-held", "wallet-available", "burn-rate", "time-left"]) {
      document.getElementById(id).textContent = "-";
    }
    this.rentals.clear();
    this.ledger.clear();
  }

  async refresh() {
    const [wallet, rentals] = await Promise.all([this.refreshWallet(), this.rentals.refresh()]);
    this.showBurn(wallet, rentals);
    await this.loadLedger(false);
    if (this.timer && rentals && rentals.some((r) => SETTLING.has(r.status)) && !this.soon) {
      this.soon = setTimeout(() => {
        this.soon = null;
        this.refresh();
      }, SOON_MS);
    }
  }

  async refreshWallet() {
    const result = await apiGet("/v1/wallet", [], { auth: true });
    if (!result.ok) {
      setStatus(this.status, errorMessage(result), true);
      return null;
    }
    const wallet = result.body;
    document.getElementById("wallet-balance").textContent = `${wallet.balance} ${wallet.currency}`;
    document.getElementById("wallet-held").textContent = wallet.held;
    document.getElementById("wallet-available").textContent = wallet.available;
    setStatus(this.status, `updated ${new Date().toLocaleTimeString()}`);
    return wallet;
  }

  showBurn(wallet, rentals) {
    const rateNode = document.getElementById("burn-rate");
    const leftNode = document.getElementById("time-left");
    if (!wallet || !rentals) {
      rateNode.textContent = "-";
      leftNode.textContent = "-";
      return;
    }
    const { rate, seconds } = burn(rentals, wallet.available);
    rateNode.textContent = `${usd(rate)}/h`;
    leftNode.textContent = seconds === null ? "nothing running" : `${duration(seconds)} at this rate`;
  }

  async loadLedger(more) {
    const params = this.ledger.params([["limit", String(LEDGER_PAGE)]], more);
    const result = await apiGet("/v1/wallet/ledger", params, { auth: true });
    const status = document.getElementById("ledger-status");
    if (!result.ok) {
      setStatus(status, errorMessage(result), true);
      return;
    }
    this.ledger.show(result.body, ledgerRow, more);
    setStatus(status, this.ledger.body.rows.length ? "" : "no entries yet");
  }

  // A Stripe PaymentIntent for the amount; the wallet is credited when the payment succeeds.
  async topup() {
    const amount = this.topupForm.elements.namedItem("amount").value.trim();
    const link = document.getElementById("topup-pay");
    link.hidden = true;
    setStatus(this.topupStatus, "creating the payment…");
    const result = await apiSend("POST", "/v1/wallet/topups", { amount }, { idempotencyKey: crypto.randomUUID() });
    if (!result.ok) {
      setStatus(this.topupStatus, errorMessage(result), true);
      return;
    }
    const topup = result.body;
    if (topup.checkout_url) {
      link.href = topup.checkout_url;
      link.hidden = false;
      setStatus(this.topupStatus, `Payment of ${usd(topup.amount, 2)} created (${topup.payment_intent_id}): pay it, and the balance updates here.`);
    } else {
      setStatus(
        this.topupStatus,
        `Payment of ${usd(topup.amount, 2)} created (${topup.payment_intent_id}); complete it with Stripe (client secret issued to this account). The balance updates when it succeeds.`,
      );
    }
  }
}
