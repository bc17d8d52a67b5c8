// The grade-entry grid's keyboard and paste (loaded by the grid page only).
// The grid is a plain form and works without this script; with it:
// - Enter and ArrowDown move to the next student's cell, ArrowUp (and
//   Shift+Enter) to the previous one; Enter in the last cell saves; Tab
//   moves as usual;
// - pasting several values (a column copied from a spreadsheet: one value
//   a line, or tab-separated) into a cell fills it and the cells below.
"use strict";

(function () {
  var CELL = "input[data-student]";

  function cells(grid) {
    return Array.prototype.slice.call(grid.querySelectorAll(CELL));
  }

  function move(to) {
    if (!to) return;
    to.focus();
    to.select();
  }

  function mark(input) {
    input.classList.toggle("changed", input.value !== input.defaultValue);
  }

  function setup() {
    var grid = document.getElementById("grid");
    if (!grid) return;
    var status = document.getElementById("grid-status");

    grid.addEventListener("keydown", function (e) {
      var input = e.target;
      if (!input.matches || !input.matches(CELL)) return;
      if (e.altKey || e.ctrlKey || e.metaKey) return;
      var list = cells(grid);
      var i = list.indexOf(input);
      var to;
      if (e.key === "ArrowDown" || (e.key === "Enter" && !e.shiftKey)) {
        to = list[i + 1];
        // Enter in the last cell submits the form, as it would without us.
        if (!to && e.key === "Enter") return;
      } else if (e.key === "ArrowUp" || (e.key === "Enter" && e.shiftKey)) {
        to = list[i - 1];
      } else {
        return;
      }
      e.preventDefault();
      move(to);
    });

    grid.addEventListener("input", function (e) {
      if (e.target.matches && e.target.matches(CELL)) mark(e.target);
    });

    grid.addEventListener("paste", function (e) {
      var input = e.target;
      if (!input.matches || !input.matches(CELL)) return;
      var data = e.clipboardData || window.clipboardData;
      if (!data) return;
      var text = data.getData("text");
      // Spreadsheets end a copied column with a line break: not a value.
      var values = text.replace(/\r\n?/g, "\n").replace(/\n+$/, "").split(/[\n\t]/);
      if (values.length < 2) return; // one value: the browser pastes it
      e.preventDefault();
      var list = cells(grid);
      var start = list.indexOf(input);
      var filled = 0;
      values.forEach(function (value, k) {
        var cell = list[start + k];
        if (!cell) return;
        cell.value = value.trim();
        mark(cell);
        filled += 1;
      });
      move(list[start + filled - 1]);
      if (status && grid.dataset.pasted) {
        status.textContent = grid.dataset.pasted.replace("{n}", String(filled));
      }
    });
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
