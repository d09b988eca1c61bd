// Sorts the sweep table by the clicked header; runs without a value stay last.
document.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], col = th.cellIndex, numeric = th.dataset.sort === "num";
  const asc = th.getAttribute("aria-sort") !== "ascending";
  th.closest("tr").querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  const key = (row) => { const v = row.cells[col].dataset.value; return v === undefined ? null : numeric ? +v : v; };
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);  // runs without a value last
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
  });
  body.append(...rows);
}));
