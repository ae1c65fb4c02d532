// Tables whose columns sort on a click of their header, and whose cells carry their column's
// name (`data-label`) so the phone layout can show each row as a labelled card.
//
// A cell sorts by its `data-sort` value when it has one (numbers, times), else by its text;
// the order is kept when the rows are replaced by a refresh.

const tables = new WeakMap();

function sortKey(cellNode) {
  const raw = cellNode?.dataset.sort ?? cellNode?.textContent.trim() ?? "";
  const number = Number(raw.replace(/^\$/, ""));
  return raw !== "" && raw !== "-" && Number.isFinite(number) ? number : raw.toLowerCase();
}

function compare(a, b) {
  if (typeof a === typeof b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  return typeof a === "number" ? -1 : 1; // numbers before text ("-" and the like)
}

class SortableTable {
  constructor(table) {
    this.table = table;
    this.headers = [...table.querySelectorAll("thead th")];
    this.column = null;
    this.direction = 1;
    this.headers.forEach((th, index) => {
      if (th.textContent.trim() === "" || th.classList.contains("no-sort")) {
        return;
      }
      th.classList.add("sortable");
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      const choose = () => this.sortBy(index);
      th.addEventListener("click", choose);
      th.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose();
        }
      });
    });
  }

  sortBy(index) {
    this.direction = this.column === index ? -this.direction : 1;
    this.column = index;
    this.headers.forEach((th, i) => {
      if (th.classList.contains("sortable")) {
        const order = this.direction > 0 ? "ascending" : "descending";
        th.setAttribute("aria-sort", i === index ? order : "none");
      }
    });
    this.apply();
  }

  // Label every cell with its column, and put the rows in the chosen order.
  apply() {
    const body = this.table.tBodies[0];
    if (!body) {
      return; // no rows yet
    }
    const names = this.headers.map((th) => th.textContent.trim());
    for (const row of body.rows) {
      [...row.cells].forEach((cellNode, i) => {
        if (names[i]) {
          cellNode.dataset.label = names[i];
        }
      });
    }
    if (this.column === null) {
      return;
    }
    const rows = [...body.rows];
    const keyed = rows.map((row, position) => [sortKey(row.cells[this.column]), position, row]);
    keyed.sort((a, b) => this.direction * compare(a[0], b[0]) || a[1] - b[1]);
    body.append(...keyed.map(([, , row]) => row));
  }
}

export function sortable(table) {
  if (!tables.has(table)) {
    tables.set(table, new SortableTable(table));
  }
  return tables.get(table);
}

// After a table body's rows changed: label them and keep the table's order.
export function rowsChanged(tbody) {
  const table = tbody.closest("table");
  if (table) {
    sortable(table).apply();
  }
}
