// roomtemp dashboard: plain JavaScript, no build step. Every URL is relative to the page's <base>,
// so the page works at "/" (make run) and under API Gateway's "/api" stage alike.
(function () {
  "use strict";

  var KEY_ITEM = "roomtemp.key";
  var BAND_ITEM = "roomtemp.band";
  var SELECTED_ITEM = "roomtemp.selected";
  var SERIES_PATH = "/buildings/{building}/rooms/{room}/series";
  var BUCKET_MS = 15 * 60 * 1000;
  var DAY_MS = 24 * 60 * 60 * 1000;
  var MAX_PAGES = 20;
  var params = new URLSearchParams(window.location.search);
  var REFRESH_MS = Math.max(5, Number(params.get("refresh")) || 30) * 1000;

  var state = { key: "", band: { low: 19, high: 25 }, selected: null, series: null, timer: 0 };
  var $ = function (id) { return document.getElementById(id); };

  // -- the API ---------------------------------------------------------------------------------

  function ApiError(status, body) {
    this.status = status;
    this.body = body || {};
    this.message = (this.body.Message || this.body.message || "HTTP " + status) + " (" + status + ")";
  }

  function url(path, query) {
    var target = new URL(path.replace(/^\//, ""), document.baseURI);
    Object.keys(query || {}).forEach(function (name) {
      if (query[name] !== undefined && query[name] !== null) target.searchParams.set(name, query[name]);
    });
    return target.toString();
  }

  function api(path, query) {
    var headers = state.key ? { Authorization: "Bearer " + state.key } : {};
    return fetch(url(path, query), { headers: headers }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = { message: text }; }
        if (!response.ok) throw new ApiError(response.status, body);
        return body;
      });
    });
  }

  // Every item of a paginated list (follows next_cursor, at most MAX_PAGES pages).
  function listAll(path, query) {
    var items = [];
    function page(cursor, left) {
      var q = Object.assign({}, query || {}, cursor ? { cursor: cursor } : {});
      return api(path, q).then(function (body) {
        items = items.concat(body.items || []);
        return body.next_cursor && left > 1 ? page(body.next_cursor, left - 1) : items;
      });
    }
    return page(null, MAX_PAGES);
  }

  function roomPath(building, room, tail) {
    return "/buildings/" + encodeURIComponent(building) + "/rooms/" + encodeURIComponent(room) + tail;
  }

  // Whether this API has the series endpoint: asked once, from its own OpenAPI document, so the
  // page never provokes a 404 (which the browser would log as an error).
  function hasSeries() {
    if (state.series !== null) return Promise.resolve(state.series);
    return api("openapi.json").then(function (doc) {
      state.series = Boolean(doc && doc.paths && doc.paths[SERIES_PATH] && doc.paths[SERIES_PATH].get);
      return state.series;
    }, function () { state.series = false; return false; });
  }

  // The room's temperature in 15-minute buckets [{start, count, average, min, max}] over
  // [fromMs, toMs): from the series endpoint when there is one, else from the raw readings.
  function temperatureBuckets(building, room, fromMs, toMs) {
    return hasSeries().then(function (available) {
      if (!available) return readingBuckets(building, room, fromMs, toMs);
      var query = { metric: "temperature", from: iso(fromMs), to: iso(toMs), interval: "15m" };
      return api(roomPath(building, room, "/series"), query).then(function (body) {
        setSource("series endpoint");
        return (body.buckets || []).map(function (b) {
          return { start: toMs_(b.start), count: b.count, average: b.average, min: b.min, max: b.max };
        });
      }, function (error) {
        if (error.status !== 404 && error.status !== 403) throw error;
        state.series = false;  // an older API: fall back for good
        return readingBuckets(building, room, fromMs, toMs);
      });
    });
  }

  function readingBuckets(building, room, fromMs, toMs) {
    setSource("raw readings");
    var query = { from: iso(fromMs), to: iso(toMs), limit: 1000 };
    return listAll(roomPath(building, room, "/readings"), query).then(function (readings) {
      return bucketize(readings, fromMs, toMs);
    });
  }

  function bucketize(readings, fromMs, toMs) {
    var buckets = {};
    readings.forEach(function (reading) {
      if (reading.temperature === null || reading.temperature === undefined) return;
      var ts = Date.parse(reading.timestamp);
      if (!(ts >= fromMs && ts < toMs)) return;
      var start = fromMs + Math.floor((ts - fromMs) / BUCKET_MS) * BUCKET_MS;
      var b = buckets[start] || (buckets[start] = { start: start, count: 0, sum: 0, min: Infinity, max: -Infinity });
      b.count += 1;
      b.sum += reading.temperature;
      b.min = Math.min(b.min, reading.temperature);
      b.max = Math.max(b.max, reading.temperature);
    });
    return Object.keys(buckets).map(Number).sort(function (a, b) { return a - b; }).map(function (start) {
      var b = buckets[start];
      return { start: start, count: b.count, average: b.sum / b.count, min: b.min, max: b.max };
    });
  }

  // -- rendering -------------------------------------------------------------------------------

  function iso(ms) { return new Date(ms).toISOString(); }
  function toMs_(value) { return typeof value === "number" ? value : Date.parse(value); }
  function fmt(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits); }
  function setSource(text) { $("chart-source").textContent = "(from " + text + ")"; }

  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "";
  }

  function comfort(value) {
    if (value === null || value === undefined) return "none";
    if (value < state.band.low) return "cold";
    if (value > state.band.high) return "warm";
    return "ok";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function roomCard(room) {
    var latest = room.latest || null;
    var average = room.average_15m ? room.average_15m.average : null;
    var shown = average !== null && average !== undefined ? average : latest && latest.temperature;
    var card = el("button", "room " + comfort(shown));
    card.type = "button";
    card.dataset.building = room.building;
    card.dataset.room = room.room;
    card.appendChild(el("span", "name", room.name || room.room));
    card.appendChild(el("span", "value", fmt(latest && latest.temperature, 1) + " °C"));
    card.appendChild(el("span", "detail", "15-min average " + fmt(average, 1) + " °C"));
    var extra = [];
    if (latest && latest.humidity !== null) extra.push(fmt(latest.humidity, 0) + " % RH");
    if (latest && latest.co2 !== null) extra.push(fmt(latest.co2, 0) + " ppm CO₂");
    if (latest) extra.push("at " + new Date(latest.timestamp).toLocaleTimeString());
    card.appendChild(el("span", "detail", latest ? extra.join(" · ") : "no readings yet"));
    var firing = (state.alerts || {})[room.building + "/" + room.room] || [];
    if (firing.length) {
      card.classList.add("alerting");
      firing.forEach(function (alert) {
        var shown = alert.value === null ? "" : " (" + fmt(alert.value, 1) + (alert.unit ? " " + alert.unit : "") + ")";
        card.appendChild(el("span", "alert", "⚠ " + alert.name + shown + " since " +
          new Date(alert.fired_at).toLocaleTimeString()));
      });
    }
    card.addEventListener("click", function () { select(room.building, room.room); });
    return card;
  }

  // Active alerts by "building/room" (GET /alerts?state=active); none if the call fails.
  function activeAlerts() {
    return listAll("/alerts", { state: "active" }).then(function (items) {
      var byRoom = {};
      items.forEach(function (alert) {
        var key = alert.building + "/" + alert.room;
        (byRoom[key] = byRoom[key] || []).push(alert);
      });
      return byRoom;
    }, function () { return {}; });
  }

  function renderBuildings(buildings) {
    var root = $("buildings");
    root.textContent = "";
    buildings.forEach(function (entry) {
      var section = el("section", "building");
      section.dataset.building = entry.building.building;
      section.appendChild(el("h2", "", entry.building.name || entry.building.building));
      var grid = el("div", "rooms");
      entry.rooms.forEach(function (room) { grid.appendChild(roomCard(room)); });
      if (!entry.rooms.length) grid.appendChild(el("p", "", "no rooms yet"));
      section.appendChild(grid);
      root.appendChild(section);
    });
    markSelected();
  }

  function markSelected() {
    var cards = document.querySelectorAll(".room");
    Array.prototype.forEach.call(cards, function (card) {
      var on = state.selected && card.dataset.building === state.selected.building &&
        card.dataset.room === state.selected.room;
      card.classList.toggle("selected", Boolean(on));
    });
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A line of 15-minute averages over a min–max area and the comfort band; gaps stay gaps.
  function drawChart(buckets, fromMs, toMs) {
    var chart = $("chart");
    chart.textContent = "";
    var W = 800, H = 280, left = 44, right = 10, top = 10, bottom = 26;
    var points = buckets.filter(function (b) { return b.count > 0 && b.average !== null; });
    chart.dataset.points = String(points.length);
    var lows = points.map(function (b) { return b.min; }).concat([state.band.low]);
    var highs = points.map(function (b) { return b.max; }).concat([state.band.high]);
    var yMin = Math.floor(Math.min.apply(null, lows) - 1), yMax = Math.ceil(Math.max.apply(null, highs) + 1);
    var x = function (ms) { return left + (ms - fromMs) / (toMs - fromMs) * (W - left - right); };
    var y = function (v) { return top + (yMax - v) / (yMax - yMin) * (H - top - bottom); };
    chart.appendChild(svg("rect", { class: "band", x: left, width: W - left - right,
      y: y(state.band.high), height: Math.max(0, y(state.band.low) - y(state.band.high)) }));
    var step = Math.max(1, Math.ceil((yMax - yMin) / 6));
    for (var v = Math.ceil(yMin); v <= yMax; v += step) {
      chart.appendChild(svg("line", { class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
      chart.appendChild(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, v + "°"));
    }
    for (var t = Math.ceil(fromMs / (3 * 3600e3)) * 3 * 3600e3; t < toMs; t += 3 * 3600e3) {
      var label = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      chart.appendChild(svg("text", { x: x(t), y: H - 8, "text-anchor": "middle" }, label));
    }
    chart.appendChild(svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: H - bottom }));
    chart.appendChild(svg("line", { class: "axis", x1: left, x2: W - right, y1: H - bottom, y2: H - bottom }));
    segments(points).forEach(function (run) {
      var mid = function (b) { return b.start + BUCKET_MS / 2; };
      var upper = run.map(function (b) { return x(mid(b)) + "," + y(b.max); });
      var lower = run.slice().reverse().map(function (b) { return x(mid(b)) + "," + y(b.min); });
      chart.appendChild(svg("polygon", { class: "range", points: upper.concat(lower).join(" ") }));
      chart.appendChild(svg("polyline", { class: "avg", points: run.map(function (b) {
        return x(mid(b)) + "," + y(b.average);
      }).join(" ") }));
    });
    points.forEach(function (b) {
      var dot = svg("circle", { class: "point", cx: x(b.start + BUCKET_MS / 2), cy: y(b.average), r: 2 });
      dot.appendChild(svg("title", {}, new Date(b.start).toLocaleString() + ": " + fmt(b.average, 2) + " °C"));
      chart.appendChild(dot);
    });
    if (!points.length) {
      chart.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "no temperature readings in the last 24 h"));
    }
  }

  function segments(points) {
    var runs = [], run = [];
    points.forEach(function (b) {
      if (run.length && b.start - run[run.length - 1].start > BUCKET_MS) { runs.push(run); run = []; }
      run.push(b);
    });
    if (run.length) runs.push(run);
    return runs;
  }

  // -- behaviour -------------------------------------------------------------------------------

  function select(building, room) {
    state.selected = { building: building, room: room };
    localStorage.setItem(SELECTED_ITEM, JSON.stringify(state.selected));
    markSelected();
    return drawSelected();
  }

  function drawSelected() {
    if (!state.selected) return Promise.resolve();
    var sel = state.selected, toMs = Date.now(), fromMs = toMs - DAY_MS;
    $("chart-panel").hidden = false;
    $("chart-title").textContent = sel.building + " / " + sel.room + " — temperature, last 24 h";
    return temperatureBuckets(sel.building, sel.room, fromMs, toMs).then(function (buckets) {
      if (state.selected === sel) drawChart(buckets, fromMs, toMs);
    });
  }

  function refresh() {
    if (!state.key) return Promise.resolve();
    status("Loading…");
    return activeAlerts().then(function (alerts) {
      state.alerts = alerts;
      return listAll("/buildings");
    }).then(function (buildings) {
      return Promise.all(buildings.map(function (building) {
        return listAll("/buildings/" + encodeURIComponent(building.building) + "/rooms")
          .then(function (rooms) { return { building: building, rooms: rooms }; });
      }));
    }).then(function (entries) {
      var rooms = [].concat.apply([], entries.map(function (e) { return e.rooms; }));
      var exists = state.selected && rooms.some(function (r) {
        return r.building === state.selected.building && r.room === state.selected.room;
      });
      if (!exists) state.selected = rooms.length ? { building: rooms[0].building, room: rooms[0].room } : null;
      renderBuildings(entries);
      if (!entries.length) status("No buildings yet: post some readings (see API docs).");
      return drawSelected().then(function () {
        status(entries.length + " building(s), " + rooms.length + " room(s); updated " +
          new Date().toLocaleTimeString() + ", refreshing every " + REFRESH_MS / 1000 + " s.");
      });
    }).catch(function (error) {
      var hint = error.status === 401 ? " — is the key right?" : error.status === 403 ? " — the key needs the read scope" : "";
      status("Could not load: " + (error.message || error) + hint, true);
    });
  }

  function useKey(key) {
    state.key = key.trim();
    if (state.key) localStorage.setItem(KEY_ITEM, state.key); else localStorage.removeItem(KEY_ITEM);
    clearInterval(state.timer);
    if (state.key) state.timer = setInterval(refresh, REFRESH_MS);
    return refresh();
  }

  function readBand() {
    var low = Number($("band-low").value), high = Number($("band-high").value);
    if (isFinite(low) && isFinite(high) && low < high) {
      state.band = { low: low, high: high };
      localStorage.setItem(BAND_ITEM, JSON.stringify(state.band));
    }
  }

  function start() {
    try {
      var band = JSON.parse(localStorage.getItem(BAND_ITEM) || "null");
      if (band && band.low < band.high) state.band = band;
      state.selected = JSON.parse(localStorage.getItem(SELECTED_ITEM) || "null");
    } catch (e) { /* a stale entry: keep the defaults */ }
    $("band-low").value = state.band.low;
    $("band-high").value = state.band.high;
    $("key-form").addEventListener("submit", function (event) {
      event.preventDefault();
      useKey($("key").value);
    });
    $("forget").addEventListener("click", function () {
      $("key").value = "";
      $("buildings").textContent = "";
      $("chart-panel").hidden = true;
      useKey("");
      status("Key forgotten. Paste an API key with the read scope.");
    });
    $("band-form").addEventListener("change", function () { readBand(); refresh(); });
    $("band-form").addEventListener("submit", function (event) { event.preventDefault(); });
    var saved = localStorage.getItem(KEY_ITEM) || "";
    $("key").value = saved;
    if (saved) useKey(saved);
  }

  window.roomtemp = { refresh: refresh, bucketize: bucketize };
  // Loaded by a script element added at run time: the document may still be parsing.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
