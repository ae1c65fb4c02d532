// The account's rentals: status, cost, limits and what is left of them, and the actions that
// fit each status (stop, start, terminate, connect). Terminating asks first, then shows the
// final cost.

import { apiGet, apiSend, connectHref, errorMessage } from "./api.js";
import { cell, duration, el, localTime, numCell, setRows, setStatus, tableBody, usd } from "./dom.js";

const STATUSES = new Set(["provisioning", "running", "stopped", "interrupted", "terminated", "failed"]);
const ENDED = new Set(["terminated", "failed"]);

// One line per limit the rental has: the limit, and what is left of it.
export function limitLines(rental) {
  const left = rental.limits_left || {};
  const lines = [];
  if (rental.max_duration_seconds) {
    const rest = left.max_duration_seconds;
    lines.push(`max ${duration(rental.max_duration_seconds)}${rest === null || rest === undefined ? "" : ` · ${duration(rest)} left`}`);
  }
  if (rental.max_cost) {
    const rest = left.max_cost;
    lines.push(`max ${usd(rental.max_cost, 2)}${rest ? ` · ${usd(rest, 2)} left` : ""}`);
  }
  if (rental.idle_timeout_seconds) {
    const rest = left.idle_timeout_seconds;
    lines.push(`idle ${duration(rental.idle_timeout_seconds)}${rest === null || rest === undefined ? "" : ` · ${duration(rest)} left`}`);
  }
  return lines;
}

function statusCell(rental) {
  const status = el("span", { class: "rental-status" }, rental.status);
  if (STATUSES.has(rental.status)) {
    status.classList.add(rental.status);
  }
  const node = el("td", {}, status);
  if (rental.reason) {
    node.append(el("span", { class: "reason" }, ` (${rental.reason})`));
  }
  return node;
}

function limitsCell(rental) {
  const lines = limitLines(rental);
  if (!lines.length) {
    return cell("-");
  }
  return el("td", { class: "limits" }, ...lines.map((line) => el("div", {}, line)));
}

export class RentalsView {
  constructor(onChange) {
    this.table = document.getElementById("rentals-table");
    this.body = tableBody("rentals-table");
    this.status = document.getElementById("rentals-status");
    this.dialog = document.getElementById("confirm-dialog");
    this.onChange = onChange;
    this.rentals = [];
    this.pending = null;
    document.getElementById("confirm-cancel").addEventListener("click", () => this.dialog.close());
    document.getElementById("confirm-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.dialog.close();
      if (this.pending) {
        this.pending();
      }
    });
  }

  clear() {
    this.rentals = [];
    setRows(this.body, []);
  }

  // The rentals, or null when the list could not be read (its status line says why).
  async refresh() {
    const result = await apiGet("/v1/rentals", [["limit", "100"]], { auth: true });
    if (result.status === 404) {
      this.table.hidden = true;
      setStatus(this.status, "rentals are not available on this broker");
      return null;
    }
    if (!result.ok) {
      this.table.hidden = true;
      setStatus(this.status, errorMessage(result), true);
      return null;
    }
    this.rentals = result.body.data || [];
    setRows(this.body, this.rentals.map((rental) => this.row(rental)));
    this.table.hidden = this.rentals.length === 0;
    if (!this.rentals.length) {
      setStatus(this.status, "no rentals yet");
    } else if (this.status.dataset.sticky !== "true") {
      setStatus(this.status, "");
    }
    return this.rentals;
  }

  row(rental) {
    const count = rental.gpu_count && rental.gpu_count > 1 ? `${rental.gpu_count}× ` : "";
    return el(
      "tr",
      { "data-rental-id": rental.id, "data-status": rental.status },
      cell(rental.id, "id"),
      statusCell(rental),
      cell(`${count}${rental.gpu ?? "-"}`),
      cell(rental.provider),
      cell(rental.tier),
      numCell(rental.price_per_hour),
      numCell(rental.cost),
      limitsCell(rental),
      el("td", { "data-sort": rental.started_at || rental.created_at || "" }, localTime(rental.started_at || rental.created_at)),
      this.actions(rental),
    );
  }

  actions(rental) {
    const node = el("td", { class: "actions" });
    const button = (label, action) => {
      const b = el("button", { type: "button", "data-action": label.toLowerCase() }, label);
      b.addEventListener("click", action);
      node.append(b);
    };
    if (rental.status === "running") {
      node.append(el("a", { href: connectHref(rental), target: "_blank", rel: "noopener", class: "connect" }, "Connect"));
      button("Stop", () => this.act(rental, "POST", `/v1/rentals/${rental.id}/stop`, "stopped"));
    }
    if (rental.status === "stopped") {
      button("Start", () => this.act(rental, "POST", `/v1/rentals/${rental.id}/start`, "starting"));
    }
    if (!ENDED.has(rental.status)) {
      button("Terminate", () => this.confirmTerminate(rental));
    }
    return node;
  }

  confirmTerminate(rental) {
    document.getElementById("confirm-text").textContent =
      `Terminate ${rental.id} (${rental.gpu} on ${rental.provider})? Billing stops and the instance is deleted; this cannot be undone.`;
    this.pending = () => this.act(rental, "DELETE", `/v1/rentals/${rental.id}`, "terminated");
    this.dialog.showModal();
  }

  async act(rental, method, path, done) {
    setStatus(this.status, `${rental.id}: working…`);
    const result = await apiSend(method, path);
    if (!result.ok) {
      this.status.dataset.sticky = "true";
      setStatus(this.status, `${rental.id}: ${errorMessage(result)}`, true);
      return;
    }
    const after = result.body;
    const note =
      after.status === "terminated"
        ? `${after.id} terminated · final cost ${usd(after.cost)}`
        : `${after.id} ${done === "starting" ? "is starting" : after.status}`;
    this.status.dataset.sticky = "true";
    setStatus(this.status, note);
    this.onChange();
  }
}
