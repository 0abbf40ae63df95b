// Renders the match rows of /matches?page=N from /api/matches. The server sends
// an empty table, so only a real browser running this script sees the data.
// Data is only ever written with textContent, never innerHTML.
// Fault hooks of the site (faults.py): a page served without the table is
// "ready" with no rows; data-rerender="1" on <body> re-renders the table a
// moment after the rows arrive and only then says "ready", so a reference to
// the table taken while the page loaded has gone stale by then.
"use strict";
(function () {
  var body = document.body;
  var page = body.dataset.page;
  var tbody = document.querySelector("#matches tbody");

  if (!tbody) {
    // The page loaded fine but has no table to fill: nothing to fetch.
    body.dataset.state = "ready";
    return;
  }

  function cell(field, text) {
    var td = document.createElement("td");
    td.dataset.field = field;
    td.textContent = text;
    return td;
  }

  function render(rows) {
    var fragment = document.createDocumentFragment();
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      tr.className = "match";
      tr.dataset.matchId = row.match_id;
      var nameCell = document.createElement("td");
      nameCell.dataset.field = "name";
      var link = document.createElement("a");
      link.href = "/match/" + encodeURIComponent(row.match_id);
      link.textContent = row.name;
      nameCell.appendChild(link);
      tr.appendChild(nameCell);
      tr.appendChild(cell("shared_cm", row.shared_cm.toFixed(1)));
      tr.appendChild(cell("segments", String(row.segments)));
      tr.appendChild(cell("relationship", row.relationship));
      tr.appendChild(cell("tree_size", String(row.tree_size)));
      tr.appendChild(cell("last_active", row.last_active));
      fragment.appendChild(tr);
    });
    while (tbody.firstChild) {
      tbody.removeChild(tbody.firstChild);
    }
    tbody.appendChild(fragment);
    body.dataset.rows = String(rows.length);
  }

  var RERENDER_DELAY_MS = 150;

  function ready() {
    if (body.dataset.rerender !== "1") {
      body.dataset.state = "ready";
      return;
    }
    setTimeout(function () {
      var table = document.querySelector("#matches");
      table.replaceWith(table.cloneNode(true));
      body.dataset.state = "ready";
    }, RERENDER_DELAY_MS);
  }

  function fail(message) {
    body.dataset.error = message;
    body.dataset.state = "error";
  }

  fetch("/api/matches?page=" + encodeURIComponent(page), {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  })
    .then(function (response) {
      if (response.status === 401) {
        body.dataset.state = "logged-out";
        return null;
      }
      if (!response.ok) {
        fail("HTTP " + response.status);
        return null;
      }
      return response.json().then(function (data) {
        render(data.rows);
        ready();
      });
    })
    .catch(function (error) {
      fail(String((error && error.message) || error));
    });
})();
