// The router's live dashboard: a static page with no build step. GET /dashboard (HTML),
// /dashboard/app.js and /dashboard/app.css; the script polls /dashboard/data (dashboard-data.ts) every
// POLL_MS. Contracts:
// - strict CSP (DASHBOARD_CSP): only same-origin script, style and fetch; no inline script or style
//   attributes (bar widths are set through the CSSOM, which CSP allows), no frames, no forms;
// - every string from the data (engine URLs, labels, model names, request ids: engine- or
//   client-provided) is written with textContent, never as HTML;
// - with --api-key the data endpoint wants the Bearer key; the page takes it from #key=... in its URL
//   (a fragment never reaches a server or a log), or from the key box, and keeps it in sessionStorage.
export const POLL_MS = 1000;

export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'none'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pdserve router</title>
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header><h1>pdserve router</h1><span id="status" data-status="loading">loading…</span>
<span id="keybox" hidden><input id="key" type="password" placeholder="API key" autocomplete="off"><button id="keybtn" type="button">use key</button></span></header>
<section><h2>Overview</h2><table id="overview"><tbody></tbody></table></section>
<section><h2>Engines</h2>
<table id="engines"><thead><tr><th>URL</th><th>role</th><th>label</th><th>models</th><th>health</th><th>breaker</th>
<th>in flight</th><th>running</th><th>waiting</th><th>KV usage</th><th>prefix hit rate</th><th>KV blocks (events)</th>
<th>QPS</th><th>TTFT p50 / p99 ms</th><th>ITL p50 / p99 ms</th></tr></thead><tbody></tbody></table></section>
<section><h2>Recent requests</h2>
<p class="legend"><span class="seg queued">queued</span> <span class="seg prefill">prefill</span>
<span class="seg lookup">decoder intake + KV lookup</span> <span class="seg transfer">KV transfer</span>
<span class="seg firststep">decoder's first step</span> <span class="seg decoder">decode leg → first token (not split: no KV timing)</span> <span class="seg decode">first → last token</span></p>
<table id="requests"><thead><tr><th>request</th><th>status</th><th>prefill</th><th>decode</th><th>TTFT ms</th><th>total ms</th><th>KV load</th><th>timeline</th></tr></thead><tbody></tbody></table></section>
</body>
</html>
`;

export const DASHBOARD_CSS = `body{font:13px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;display:inline;margin-right:12px}h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;white-space:nowrap}
th{background:#f3f3f3}.down{color:#b00020;font-weight:bold}.up{color:#1b7f2a}
#status[data-status=error]{color:#b00020}.timeline{position:relative;width:420px;height:12px;background:#f6f6f6}
.seg{display:inline-block;height:12px;min-width:1px}.timeline .seg{position:absolute;top:0}
.legend .seg{padding:0 4px;height:auto}.queued{background:#bbb}.prefill{background:#f2a33a}
.transfer{background:#7e57c2;color:#fff}.lookup{background:#d7c8ee}.firststep{background:#26a69a;color:#fff}.decoder{background:#9575cd;color:#fff}.decode{background:#2e86de;color:#fff}
`;

// Plain browser JS (no modules, no dependencies). Kept free of backticks so it can live in this string.
export const DASHBOARD_JS = String.raw`'use strict';
(function () {
  var POLL_MS = ${POLL_MS};
  var KEY = 'pdserve-dashboard-key';
  var m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) {
      var td = document.createElement('td');
      if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? '–' : String(c);
      tr.appendChild(td);
    });
    return tr;
  }
  function pct(x) { return x === null || x === undefined ? '–' : (100 * x).toFixed(1) + '%'; }
  function pair(a, b) { return a.toFixed(1) + ' / ' + b.toFixed(1); }
  function fill(id, rows) {
    var tb = document.querySelector('#' + id + ' tbody');
    tb.replaceChildren.apply(tb, rows);
  }
  function status(text, kind) {
    var s = document.getElementById('status');
    s.textContent = text;
    s.setAttribute('data-status', kind);
  }
  // segments of one request's timeline: [class, from ms, to ms]
  function segments(t) {
    var out = [];
    var firstLeg = t.prefill_start !== null ? t.prefill_start : t.decode_start;
    if (firstLeg !== null) out.push(['queued', 0, firstLeg]);
    if (t.prefill_start !== null && t.prefill_end !== null) out.push(['prefill', t.prefill_start, t.prefill_end]);
    if (t.decode_start !== null && t.first_token !== null) {
      if (t.kv_lookup === null) out.push(['decoder', t.decode_start, t.first_token]);
      else {
        var ready = t.kv_end !== null ? t.kv_end : t.kv_lookup;
        out.push(['lookup', t.decode_start, t.kv_start !== null ? t.kv_start : t.kv_lookup]);
        if (t.kv_start !== null && t.kv_end !== null) out.push(['transfer', t.kv_start, t.kv_end]);
        out.push(['firststep', ready, t.first_token]);
      }
    }
    if (t.first_token !== null && t.last_token !== null) out.push(['decode', t.first_token, t.last_token]);
    return out;
  }
  function timeline(t, scale) {
    var box = el('div', null, 'timeline');
    segments(t).forEach(function (s) {
      var seg = el('span', null, 'seg ' + s[0]);
      seg.setAttribute('data-seg', s[0]);
      seg.title = s[0] + ': ' + (s[2] - s[1]).toFixed(1) + ' ms';
      seg.setAttribute('data-ms', (s[2] - s[1]).toFixed(3));
      seg.style.left = (100 * s[1] / scale) + '%';
      seg.style.width = Math.max(0.3, 100 * (s[2] - s[1]) / scale) + '%';
      box.appendChild(seg);
    });
    return box;
  }
  function render(d) {
    var o = d.overall;
    fill('overview', [
      row(['routing logic', d.routing_logic + ' (prefill policy ' + d.prefill_policy + ', decode policy ' + d.decode_policy + ')']),
      row(['requests', d.requests_total + ' total, ' + d.inflight + ' in flight, ' + o.finished + ' finished in the last ' + d.window_s + ' s']),
      row(['QPS', o.qps]),
      row(['TTFT p50 / p99 ms', pair(o.ttft_p50_ms, o.ttft_p99_ms)]),
      row(['ITL p50 / p99 ms', pair(o.itl_p50_ms, o.itl_p99_ms)]),
    ].concat(d.disagg_decisions ? [row(['disaggregation decisions', Object.keys(d.disagg_decisions).map(function (k) { return k + ' ' + d.disagg_decisions[k]; }).join(', ')])] : []));
    fill('engines', d.engines.map(function (e) {
      var tr = row([e.url, e.role, e.label, e.models.join(', '), el('span', e.healthy ? 'healthy' : 'down' + (e.last_error ? ': ' + e.last_error : ''), e.healthy ? 'up' : 'down'),
        e.breaker, e.inflight, e.running, e.waiting, pct(e.kv_usage), pct(e.prefix_hit_rate), e.kv_events_blocks, e.stats.qps,
        pair(e.stats.ttft_p50_ms, e.stats.ttft_p99_ms), pair(e.stats.itl_p50_ms, e.stats.itl_p99_ms)]);
      tr.setAttribute('data-engine', e.url);
      return tr;
    }));
    var scale = 1;
    d.recent.forEach(function (r) { if (r.t.last_token !== null && r.t.last_token > scale) scale = r.t.last_token; });
    fill('requests', d.recent.map(function (r) {
      var tr = row([r.id, r.outcome + (r.status !== null ? ' ' + r.status : ''), r.prefill, r.decode,
        r.t.first_token === null ? null : r.t.first_token.toFixed(1), r.t.last_token === null ? null : r.t.last_token.toFixed(1),
        r.kv ? r.kv.load_ms.toFixed(2) + ' ms, ' + r.kv.tokens + ' tokens' : null, timeline(r.t, scale)]);
      tr.setAttribute('data-request', r.id);
      return tr;
    }));
    status('updated ' + new Date(d.now).toLocaleTimeString() + ' · ' + d.requests_total + ' requests', 'ok');
    document.body.setAttribute('data-requests-total', String(d.requests_total));
  }
  function poll() {
    var key = sessionStorage.getItem(KEY);
    var headers = key ? { authorization: 'Bearer ' + key } : {};
    fetch('/dashboard/data', { headers: headers, cache: 'no-store' }).then(function (res) {
      if (res.status === 401) {
        document.getElementById('keybox').hidden = false;
        status('API key needed', 'error');
        return null;
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      return res.json();
    }).then(function (d) { if (d) render(d); }, function (e) { status('no data: ' + e.message, 'error'); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  document.getElementById('keybtn').addEventListener('click', function () {
    sessionStorage.setItem(KEY, document.getElementById('key').value);
    document.getElementById('keybox').hidden = true;
  });
  poll();
})();
`;
