// Building the page's DOM from data. Every piece of data goes in as a text node or an
// attribute value, never as markup, so nothing the API returns can become HTML or script.

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
