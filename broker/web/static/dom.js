// Building the page's DOM from data. Every piece of data goes in as a text node or an
// attribute value, never as markup, so nothing the API returns can become HTML or script.

import { rowsChanged } from "./sort.js";

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child ?? ""));
  }
  return node;
}

export function el(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

export function svgEl(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function setRows(tbody, rows) {
  tbody.replaceChildren(...rows);
  rowsChanged(tbody);
}

export function appendRows(tbody, rows) {
  tbody.append(...rows);
  rowsChanged(tbody);
}

// The body of a table of the page, by the table's id (the page's tables are written without one).
export function tableBody(id) {
  const table = document.getElementById(id);
  return table.tBodies[0] ?? table.createTBody();
}

// The page's elements by id: byId({ form: "rent-form" }) is { form: <the #rent-form element> }.
export function byId(ids) {
  return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, document.getElementById(id)]));
}

// A table read a page at a time: a fresh read replaces its rows, its "more" button (added after
// the table) appends the next page, and is shown only while the API has a `next_cursor`.
export class Pager {
  constructor(tbody, { id, label, onMore }) {
    this.body = tbody;
    this.cursor = null;
    this.button = el("button", { type: "button", id, hidden: "" }, label);
    this.button.addEventListener("click", onMore);
    (tbody.closest(".table-wrap") || tbody.closest("table")).after(this.button);
  }

  // A request's parameters, with the cursor of the next page when `more` asks for it.
  params(params, more) {
    return more && this.cursor ? [...params, ["cursor", this.cursor]] : params;
  }

  show(page, toRow, more) {
    const rows = page.data.map(toRow);
    if (more) {
      appendRows(this.body, rows);
    } else {
      setRows(this.body, rows);
    }
    this.cursor = page.next_cursor;
    this.button.hidden = !this.cursor;
  }

  clear() {
    setRows(this.body, []);
    this.cursor = null;
    this.button.hidden = true;
  }
}

// A cell holding a number: shown as given, sorted by its value.
export function numCell(text, value = text) {
  const node = cell(text, "num");
  if (value !== null && value !== undefined && value !== "") {
    node.dataset.sort = String(value);
  }
  return node;
}

// USD for people: "$0.287/h" style, with up to `digits` decimals and at least two.
export function usd(amount, digits = 6) {
  const value = Number(amount);
  if (amount === null || amount === undefined || !Number.isFinite(value)) {
    return "-";
  }
  const text = value.toFixed(digits).replace(/0+$/, "");
  const [whole, fraction = ""] = text.split(".");
  return `$${whole}.${fraction.padEnd(2, "0")}`;
}

// A span of seconds as "2 h 5 min", "45 min" or "30 s".
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) {
    return "-";
  }
  const total = Math.max(0, Math.round(Number(seconds)));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  if (hours >= 48) {
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }
  if (hours) {
    return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
  }
  return minutes ? `${minutes} min` : `${total} s`;
}

export function setStatus(node, text, isError = false) {
  node.textContent = text;
  node.classList.toggle("error", isError);
}

export function cell(text, className = null) {
  return el("td", { class: className }, text ?? "-");
}

export function percent(probability) {
  return `${(probability * 100).toFixed(1)}%`;
}

export function localTime(iso) {
  if (!iso) {
    return "-";
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}
