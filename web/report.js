/* saeval report pages. The data come from the JSON block #sv-data written
 * by `saeval report`; every chart is drawn by Plotly (shipped next to the
 * pages). Text from the data is only ever inserted with textContent, and
 * strings handed to Plotly (which reads a little HTML in labels) are
 * escaped first. */
'use strict';
(function () {
  const data = JSON.parse(document.getElementById('sv-data').textContent);
  const app = document.getElementById('app');
  const charts = data.charts !== false && typeof window.Plotly !== 'undefined';
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
      else e.setAttribute(k, v);
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined) return '–';
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }
  function esc(s) {
    return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function axis(title, extra) { return Object.assign({title: {text: title}, automargin: true}, extra || {}); }
  function finite(v) { return typeof v === 'number' && Number.isFinite(v); }

  /* A chart section: heading, what it shows, the plot (or why there is none). */
  function chart(parent, id, title, explain, traces, layout) {
    const sec = el('section', {class: 'chart-box'}, el('h3', {text: title}));
    if (explain) sec.append(el('p', {class: 'explain', text: explain}));
    const div = el('div', {id: id, class: 'chart'});
    sec.append(div);
    parent.append(sec);
    if (!charts) {
      div.className = 'nochart';
      div.textContent = 'Chart not available: plotly.min.js was not found when this report was written ' +
        '(build saeval with npm available, or set SAEVAL_PLOTLY_JS, then run `saeval report CONFIG` again).';
      return div;
    }
    const base = {margin: {t: 30, r: 20, b: 50, l: 60}, hovermode: 'closest', height: 360,
                  legend: {orientation: 'h', y: -0.25}};
    window.Plotly.newPlot(div, traces, Object.assign(base, layout || {}),
                          {displaylogo: false, responsive: true});
    return div;
  }
  function note(parent, text, cls) { parent.append(el('p', {class: cls || 'note', text: text})); }
  function bars(h, name, color) {
    return {type: 'bar', x: h.x, y: h.y, width: h.width, name: name, marker: {color: color || palette[0]},
            hovertemplate: '%{x}: %{y}<extra></extra>'};
  }
  function samplingRule(shown, total) {
    return 'Per-latent scatter plots show at most ' + data.max_points + ' latents: when d_sae is larger, ' +
      'latent ⌊i·d_sae/' + data.max_points + '⌋ for i = 0…' + (data.max_points - 1) +
      ' (evenly spaced, the same latents every time). Here: ' + shown + ' of ' + total + ' latents.';
  }

  /* ---------------- sweep page ---------------- */
  function sweepPage() {
    const rows = data.rows, cols = data.columns;
    const ok = rows.filter(r => r.status === 'ok');
    const bad = rows.filter(r => r.status !== 'ok');
    const datasets = [...new Set(rows.map(r => r.dataset))];
    const saes = [...new Set(rows.map(r => r.sae_id))];
    const archs = [...new Set(ok.map(r => r.architecture))];
    const archColor = a => palette[archs.indexOf(a) % palette.length];
    document.title = 'saeval report: ' + data.output_dir;
    app.append(el('h1', {text: 'saeval sweep report'}),
      el('p', {class: 'sub', text: 'Results in ' + data.output_dir + ': ' + rows.length + ' pairs, ' + ok.length +
        ' evaluated, ' + bad.filter(r => r.status !== 'missing').length + ' failed, ' +
        bad.filter(r => r.status === 'missing').length + ' missing. Built from all_eval_results.json and ' +
        'generalization.json alone; click an SAE for its pair page.'}));
    if (!data.has_downstream)
      note(app, 'No downstream metrics (ce_loss_score, kl_div_score) in these results: the sweep was evaluated ' +
        'without a language model, so those columns and panels are left out.');
    const nav = el('nav', {}, ...['table', 'frontier', 'generalization', 'health', 'failed'].map(
      s => el('a', {href: '#' + s, text: s})));
    app.append(nav);

    /* Table: sortable (click a heading), filterable (text, dataset, status). */
    const sec = el('section', {id: 'table'}, el('h2', {text: 'All pairs'}));
    const filter = el('input', {id: 'filter', type: 'search', placeholder: 'filter: SAE, architecture, rating…'});
    const dsSel = el('select', {id: 'dataset-filter'}, el('option', {value: '', text: 'all datasets'}),
      ...datasets.map(d => el('option', {value: d, text: d})));
    const stSel = el('select', {id: 'status-filter'}, el('option', {value: '', text: 'any status'}),
      ...['ok', 'error', 'missing'].map(s => el('option', {value: s, text: s})));
    const count = el('span', {id: 'shown-count'});
    sec.append(el('div', {class: 'controls'}, filter, dsSel, stSel, count));
    const textCols = [['sae_id', 'SAE'], ['dataset', 'dataset'], ['architecture', 'arch.'], ['d_sae', 'd_sae'],
                      ['status', 'status'], ['rating', 'health']];
    const head = el('tr');
    const table = el('table', {id: 'sweep-table', class: 'data'}, el('thead', {}, head));
    const body = el('tbody');
    table.append(body);
    const trs = rows.map(r => {
      const tr = el('tr', {'data-sae': r.sae_id, 'data-dataset': r.dataset, 'data-status': r.status,
                           class: 'st-' + r.status});
      for (const [k] of textCols) {
        const v = r[k];
        const td = el('td', {'data-key': k});
        if (k === 'sae_id' && r.page) td.append(el('a', {href: r.page, text: r.sae_id}));
        else td.textContent = v === undefined || v === null ? '–' : (typeof v === 'number' ? fmt(v) : v);
        if (k === 'status' && r.message) td.title = r.message;
        tr.append(td);
      }
      for (const c of cols) {
        const v = r.v[c.key];
        tr.append(el('td', {'data-key': c.key, 'data-v': v === null ? '' : String(v), class: 'num',
                            title: v === null ? 'no value' : String(v), text: fmt(v)}));
      }
      tr._row = r;
      body.append(tr);
      return tr;
    });
    let sortKey = null, sortDir = 1;
    const keyOf = (r, k) => (k in r.v ? r.v[k] : r[k]);
    [...textCols, ...cols.map(c => [c.key, c.label])].forEach(([k, label]) => {
      const th = el('th', {'data-key': k, text: label, title: 'sort by ' + label});
      th.addEventListener('click', () => {
        sortDir = sortKey === k ? -sortDir : 1;
        sortKey = k;
        for (const t of head.children) t.classList.remove('asc', 'desc');
        th.classList.add(sortDir > 0 ? 'asc' : 'desc');
        const sorted = trs.slice().sort((a, b) => {
          const x = keyOf(a._row, k), y = keyOf(b._row, k);
          const nx = x === null || x === undefined, ny = y === null || y === undefined;
          if (nx || ny) return nx - ny; /* no value: last either way */
          return (typeof x === 'number' ? x - y : String(x).localeCompare(String(y))) * sortDir;
        });
        for (const tr of sorted) body.append(tr);
      });
      head.append(th);
    });
    function applyFilter() {
      const q = filter.value.trim().toLowerCase();
      let n = 0;
      for (const tr of trs) {
        const r = tr._row;
        const hay = [r.sae_id, r.dataset, r.architecture, r.status, r.rating || ''].join(' ').toLowerCase();
        const show = (!q || hay.includes(q)) && (!dsSel.value || r.dataset === dsSel.value) &&
                     (!stSel.value || r.status === stSel.value);
        tr.hidden = !show;
        n += show;
      }
      count.textContent = n + ' of ' + trs.length + ' pairs shown';
    }
    for (const c of [filter, dsSel, stSel]) c.addEventListener('input', applyFilter);
    applyFilter();
    sec.append(el('div', {class: 'scroll'}, table));
    app.append(sec);

    /* Sparsity-fidelity frontier: one panel per dataset, colored by architecture. */
    const fr = el('section', {id: 'frontier'}, el('h2', {text: 'Sparsity–fidelity frontier'}));
    app.append(fr);
    const grid = el('div', {class: 'grid'});
    fr.append(grid);
    const ys = [['explained_variance', 'explained variance', 'ev']];
    if (data.has_downstream) ys.push(['ce_loss_score', 'CE loss score', 'ce']);
    for (const [key, label, tag] of ys) {
      datasets.forEach((ds, di) => {
        const traces = archs.map(a => {
          const pts = ok.filter(r => r.dataset === ds && r.architecture === a && finite(r.v.l0) && finite(r.v[key]));
          return {type: 'scatter', mode: 'markers', name: a, x: pts.map(r => r.v.l0), y: pts.map(r => r.v[key]),
                  text: pts.map(r => esc(r.sae_id)), marker: {color: archColor(a), size: 9},
                  hovertemplate: '%{text}<br>L0 %{x:.4g}<br>' + label + ' %{y:.4g}<extra>' + esc(a) + '</extra>'};
        }).filter(t => t.x.length > 0);
        const l0s = ok.filter(r => r.dataset === ds).map(r => r.v.l0).filter(finite);
        const logx = l0s.length > 1 && Math.min(...l0s) > 0 && Math.max(...l0s) / Math.min(...l0s) > 20;
        chart(grid, 'frontier-' + tag + '-' + di, ds + ': L0 vs ' + label, null, traces,
              {xaxis: axis('L0 (active latents per token)' + (logx ? ', log scale' : ''), {type: logx ? 'log' : 'linear'}),
               yaxis: axis(label)});
      });
    }

    /* Generalization heatmap. */
    const gs = el('section', {id: 'generalization'}, el('h2', {text: 'Generalization: explained-variance drop'}));
    app.append(gs);
    const g = data.generalization;
    const grows = g ? g.rows.filter(r => finite(r.drop)) : [];
    if (!grows.length) {
      note(gs, g ? 'generalization.json has no OOS row with a drop: nothing to show.'
                 : 'No generalization.json in the results (a shard run, or no in-sample dataset).');
    } else {
      const ySae = [...new Set(grows.map(r => r.sae_id))], xDs = [...new Set(grows.map(r => r.dataset))];
      const z = ySae.map(() => xDs.map(() => null)), txt = ySae.map(() => xDs.map(() => ''));
      const marks = {above: {x: [], y: [], t: []}, below: {x: [], y: [], t: []}};
      for (const r of grows) {
        const i = ySae.indexOf(r.sae_id), j = xDs.indexOf(r.dataset);
        z[i][j] = r.drop;
        txt[i][j] = esc(r.sae_id + ' on ' + r.dataset + (r.shift ? ' (' + r.shift + ' shift' +
          (r.band ? ', expected ' + r.band[0] + '–' + r.band[1] + ' %' : '') + ')' : '') +
          (r.flag ? ': ' + r.flag + ' the band' : ''));
        if (r.flag === 'above' || r.flag === 'below') {
          marks[r.flag].x.push(r.dataset); marks[r.flag].y.push(r.sae_id); marks[r.flag].t.push(txt[i][j]);
        }
      }
      const traces = [{type: 'heatmap', x: xDs.map(esc), y: ySae.map(esc), z: z, text: txt, colorscale: 'RdBu',
                       zmid: 0, colorbar: {title: {text: 'drop %'}},
                       hovertemplate: '%{text}<br>drop %{z:.3g} %<extra></extra>'}];
      for (const [flag, sym, name] of [['above', 'x', 'above the expected band (worse)'],
                                       ['below', 'circle-open', 'below the expected band (better)']]) {
        if (marks[flag].x.length)
          traces.push({type: 'scatter', mode: 'markers', name: name, x: marks[flag].x.map(esc),
                       y: marks[flag].y.map(esc), text: marks[flag].t,
                       marker: {symbol: sym, size: 12, color: '#111', line: {width: 2}},
                       hovertemplate: '%{text}<extra></extra>'});
      }
      chart(gs, 'gen-heatmap', 'SAE × OOS dataset', 'drop % = 100·(in-sample − OOS)/|in-sample| explained ' +
            'variance, against ' + (g.reference || 'the in-sample dataset') + '. Marked cells fall outside the ' +
            'band expected for the dataset\'s declared shift (domain 20–40 %, task 0–60 %, distribution 10–30 %).',
            traces, {height: Math.max(320, 60 + 22 * ySae.length), xaxis: axis('OOS dataset'),
                     yaxis: axis('SAE', {autorange: 'reversed'}), legend: {orientation: 'h', y: 1.08}});
    }

    /* Dead fraction and absorption per SAE. */
    const hs = el('section', {id: 'health'}, el('h2', {text: 'Dead latents and absorption per SAE'}));
    app.append(hs);
    const deadTraces = datasets.map((ds, i) => {
      const pts = ok.filter(r => r.dataset === ds && finite(r.v.dead_fraction));
      return {type: 'bar', name: ds, x: pts.map(r => esc(r.sae_id)), y: pts.map(r => 100 * r.v.dead_fraction),
              marker: {color: palette[i % palette.length]}, hovertemplate: '%{x}: %{y:.3g} %<extra>' + esc(ds) + '</extra>'};
    }).filter(t => t.x.length);
    chart(hs, 'dead-bars', 'Dead latents (%) per SAE and dataset',
          'Latents that never fired on an evaluated token of the dataset. Health rubric: < 5 % excellent, < 15 % good, < 25 % acceptable.',
          deadTraces, {barmode: 'group', xaxis: axis('SAE'), yaxis: axis('dead latents (%)')});
    const absRows = saes.map(s => ok.find(r => r.sae_id === s && finite(r.v.absorption))).filter(Boolean);
    const th = [0.15, 0.25, 0.35];
    chart(hs, 'absorption-bars', 'Absorption (decoder mean |cos|) per SAE',
          'Mean |cos| over all decoder row pairs (a property of the weights, the same on every dataset). Lines: rubric limits 0.15 / 0.25 / 0.35.',
          [{type: 'bar', name: 'decoder mean |cos|', x: absRows.map(r => esc(r.sae_id)), y: absRows.map(r => r.v.absorption),
            marker: {color: absRows.map(r => archColor(r.architecture))}, hovertemplate: '%{x}: %{y:.4g}<extra></extra>'}],
          {xaxis: axis('SAE'), yaxis: axis('decoder mean |cos|'), showlegend: false,
           shapes: th.map(t => ({type: 'line', xref: 'paper', x0: 0, x1: 1, y0: t, y1: t,
                                 line: {dash: 'dot', width: 1, color: '#888'}}))});

    /* Failed and missing pairs. */
    const fs = el('section', {id: 'failed'}, el('h2', {text: 'Failed and missing pairs'}));
    app.append(fs);
    if (!bad.length) note(fs, 'None: every pair was evaluated.');
    else fs.append(el('ul', {id: 'failed-list'}, ...bad.map(r => el('li', {class: 'st-' + r.status},
      el('b', {text: r.status}), ' ' + r.sae_id + ' / ' + r.dataset + (r.message ? ': ' + r.message : '')))));
  }

  /* ---------------- pair page ---------------- */
  function kvText(o) {
    return Object.entries(o).filter(([k]) => k !== 'label')
      .map(([k, v]) => k + ': ' + (Array.isArray(v) ? '[' + v.map(fmt).join(', ') + ']' :
        v !== null && typeof v === 'object' ? '{' + kvText(v) + '}' : fmt(v))).join('; ');
  }
  function healthTables(parent, h) {
    if (!h || typeof h !== 'object') { note(parent, 'No health ratings in this result.'); return; }
    const ranges = h.ranges || {}, q = h.quality_score || {};
    const t1 = el('table', {class: 'data', id: 'health-ranges'},
      el('tr', {}, el('th', {text: 'rubric 1: ranges'}), el('th', {text: 'rating'}), el('th', {text: 'numbers behind it'})));
    for (const [k, v] of Object.entries(ranges)) {
      if (!v || typeof v !== 'object') continue;
      t1.append(el('tr', {}, el('td', {text: k}), el('td', {class: 'rating', text: v.label || (v.assumed ? 'assumed' : '')}),
                    el('td', {text: kvText(v)})));
    }
    const t2 = el('table', {class: 'data', id: 'health-quality'},
      el('tr', {}, el('th', {text: 'rubric 2: quality score'}), el('th', {text: 'criterion'}), el('th', {text: 'value'}),
         el('th', {text: 'label'}), el('th', {text: 'points'})));
    for (const part of ['reconstruction', 'sparsity', 'interpretability']) {
      const p = q[part];
      if (!p || typeof p !== 'object') continue;
      let first = true;
      for (const [ck, cv] of Object.entries(p)) {
        if (!cv || typeof cv !== 'object' || Array.isArray(cv)) continue;
        t2.append(el('tr', {}, el('td', {text: first ? part + ' (' + fmt(p.points) + ' / ' + fmt(p.max_points) + ')' : ''}),
          el('td', {text: ck}), el('td', {class: 'num', text: fmt(cv.value)}), el('td', {text: cv.label || ''}),
          el('td', {class: 'num', text: fmt(cv.points)})));
        first = false;
      }
      if (first) t2.append(el('tr', {}, el('td', {text: part}), el('td', {text: p.status || ''}), el('td'), el('td'),
                               el('td', {class: 'num', text: fmt(p.points)})));
    }
    t2.append(el('tr', {class: 'total'}, el('td', {text: 'total'}), el('td', {text: 'score out of 4 / scaled to 5'}),
      el('td', {class: 'num', text: fmt(q.score_out_of_4) + ' / ' + fmt(q.score_out_of_5_scaled)}),
      el('td', {class: 'rating', text: q.rating || ''}), el('td')));
    parent.append(t1, t2);
  }

  function pairPage() {
    const d = data;
    document.title = 'saeval: ' + d.sae_id + ' on ' + d.dataset;
    app.append(el('p', {}, el('a', {href: '../index.html', text: '← sweep report'})),
      el('h1', {text: d.sae_id + ' on ' + d.dataset}),
      el('p', {class: 'sub', text: d.architecture + ' SAE, d_in ' + fmt(d.d_in) + ', d_sae ' + fmt(d.d_sae) +
        '. From ' + d.source + '; nothing here is recomputed.'}));
    for (const n of d.notes || []) note(app, n);
    const lp = d.latent_pages;
    const latentHref = j => lp && lp.page ? lp.page + '#' + j : null;
    if (lp && lp.page)
      app.append(el('p', {class: 'sub', id: 'latent-link'}, 'Per-latent examples from ' + lp.features_file + ': ',
        el('a', {href: lp.page, text: 'latent pages'}), ' (or click a point of a per-latent scatter plot, or a latent ' +
        'of the most similar decoder pairs).'));
    else if (lp) note(app, 'Feature file ' + lp.features_file + ' found but not shown: ' + lp.why_not);
    /* A click on a per-latent point opens that latent (hover text = latent id). */
    const linkPoints = div => {
      if (!lp || !lp.page || !div || !div.on) return;
      div.on('plotly_click', ev => {
        const pt = ev && ev.points && ev.points[0];
        if (pt && pt.text !== undefined) window.location.href = latentHref(pt.text);
      });
    };

    const hs = el('section', {id: 'health'}, el('h2', {text: 'Health rubrics'}));
    app.append(hs);
    healthTables(hs, d.health);

    const ms = el('section', {id: 'metrics'}, el('h2', {text: 'Metrics'}));
    const mt = el('table', {class: 'data', id: 'metrics-table'},
      el('tr', {}, el('th', {text: 'group'}), el('th', {text: 'metric'}), el('th', {text: 'value'})));
    for (const [g, k, v] of d.scalars)
      mt.append(el('tr', {}, el('td', {text: g}), el('td', {text: k}),
                    el('td', {class: 'num', 'data-v': v === null ? '' : String(v), title: String(v), text: fmt(v)})));
    ms.append(mt);
    app.append(ms);

    const ls = el('section', {id: 'latents'}, el('h2', {text: 'Latents'}));
    app.append(ls);
    const grid = el('div', {class: 'grid'});
    ls.append(grid);
    if (d.density_hist)
      chart(grid, 'density-hist', 'log10 feature density', 'Every latent that fired, in bins of ' + d.density_hist.width +
            ' decades; ' + d.density.dead + ' of ' + d.density.latents + ' latents never fired and are not shown.',
            [bars(d.density_hist, 'latents')], {xaxis: axis('log10 density'), yaxis: axis('latents'), bargap: 0});
    if (d.cah)
      linkPoints(chart(grid, 'cah-scatter', 'Consistent-activation heuristic vs density',
            samplingRule(d.cah.sampled, d.density.latents) + ' Latents that never fired are left out (' +
            d.cah.ids.length + ' points).',
            [{type: 'scatter', mode: 'markers', name: 'latent', x: d.cah.x, y: d.cah.y, text: d.cah.ids.map(String),
              marker: {size: 4, opacity: 0.6}, hovertemplate: 'latent %{text}<br>log10 density %{x:.3f}<br>CAH %{y:.3g}<extra></extra>'}],
            {xaxis: axis('log10 density'), yaxis: axis('firings per sequence with a firing', {type: 'log'})}));
    if (d.encdec_hist)
      chart(grid, 'encdec-hist', 'Encoder–decoder cosine', 'cos(W_enc[:, j], W_dec[j, :]) for every latent, bins of ' +
            fmt(d.encdec_hist.width) + '.', [bars(d.encdec_hist, 'latents', palette[2])],
            {xaxis: axis('cosine', {range: [-1, 1]}), yaxis: axis('latents'), bargap: 0});
    if (d.l0_hist)
      chart(grid, 'l0-hist', 'L0 per token', 'Tokens per number of active latents' +
            (d.l0_hist.width > 1 ? ' (bins of ' + d.l0_hist.width + ' L0 values)' : '') + '.',
            [bars(d.l0_hist, 'tokens', palette[3])], {xaxis: axis('L0'), yaxis: axis('tokens'), bargap: 0});
    if (d.dec_cos_hist)
      chart(grid, 'deccos-hist', 'Decoder cosine over all latent pairs', 'Exact pair counts in ' +
            '200 bins over [−1, 1] (log scale).', [bars(d.dec_cos_hist, 'pairs', palette[4])],
            {xaxis: axis('cos(u_j, u_l)', {range: [-1, 1]}), yaxis: axis('pairs', {type: 'log'}), bargap: 0});
    if (d.encoder) {
      const e = d.encoder, hover = e.ids.map(String);
      const dims = [['norm', 'encoder norm'], ['bias', 'encoder bias'], ['cos', 'enc–dec cosine']];
      const pairs = [[0, 1], [0, 2], [1, 2]];
      const traces = pairs.map(([a, b], i) => ({
        type: 'scatter', mode: 'markers', name: dims[a][1] + ' vs ' + dims[b][1], x: e[dims[a][0]], y: e[dims[b][0]],
        xaxis: 'x' + (i + 1), yaxis: 'y' + (i + 1), text: hover, showlegend: false,
        marker: {size: 3, opacity: 0.5, color: palette[i]},
        hovertemplate: 'latent %{text}<br>' + dims[a][1] + ' %{x:.4g}<br>' + dims[b][1] + ' %{y:.4g}<extra></extra>'}));
      const lay = {grid: {rows: 1, columns: 3, pattern: 'independent'}, height: 340};
      pairs.forEach(([a, b], i) => {
        lay['xaxis' + (i + 1)] = axis(dims[a][1]);
        lay['yaxis' + (i + 1)] = axis(dims[b][1]);
      });
      const wide = el('div', {class: 'wide'});
      grid.append(wide);
      linkPoints(chart(wide, 'encoder-matrix', 'Encoder norm, bias and enc–dec cosine (scatter matrix)',
            samplingRule(e.ids.length, d.density ? d.density.latents : e.ids.length) + ' Hover: latent id.', traces, lay));
    }
    if (d.top_pairs && d.top_pairs.length) {
      const ts = el('section', {id: 'top-pairs'}, el('h3', {text: 'Most similar decoder pairs'}));
      const t = el('table', {class: 'data'}, el('tr', {}, el('th', {text: 'latent j'}), el('th', {text: 'latent l'}),
                                                 el('th', {text: 'cos'})));
      const cell = j => latentHref(j) ? el('td', {class: 'num'}, el('a', {href: latentHref(j), text: fmt(j)}))
                                      : el('td', {class: 'num', text: fmt(j)});
      for (const [j, l, c] of d.top_pairs)
        t.append(el('tr', {}, cell(j), cell(l), el('td', {class: 'num', text: fmt(c)})));
      ts.append(t);
      app.append(ts);
    }
  }

  /* ---------------- latents page ---------------- */
  /* One page per pair; the latents' data sit in chunk files of data.chunk
   * latents (<script src>, which works from file://), loaded when shown. */
  function latentsPage() {
    const d = data, nz = d.nonzero, mx = d.max, tokens = d.params.tokens_evaluated;
    document.title = 'saeval: latents of ' + d.sae_id + ' on ' + d.dataset;
    const pr = d.params;
    app.append(el('p', {}, el('a', {href: '../index.html', text: '← sweep report'}), ' · ',
                    el('a', {href: d.pair_page, text: 'pair page'})),
      el('h1', {text: 'Latents of ' + d.sae_id + ' on ' + d.dataset}),
      el('p', {class: 'sub', text: 'd_sae ' + d.d_sae + '. From ' + d.features_file + ' (' + tokens +
        ' evaluated tokens, ' + pr.sequences + ' sequences): the ' + pr.top_n + ' top examples per latent, ' +
        pr.n_intervals + ' activation intervals with ' + pr.interval_k + ' random samples each, context ' +
        (pr.context_before < 0 ? 'whole sequences' : pr.context_before + ' tokens before and ' + pr.context_after +
         ' after') + '; tokens shaded by the latent\u2019s activation on them (relative to its max). ' +
        (d.tokenizer ? 'Text from ' + d.tokenizer + '.' : 'No tokenizer named: token ids are shown.') +
        ' Latent data are loaded ' + d.chunk + ' latents at a time from ' + d.chunk_dir + '.'}));
    /* selector: an id, previous/next, and a list sorted by density or max */
    const idIn = el('input', {id: 'latent-id', type: 'number', min: 0, max: d.d_sae - 1, step: 1});
    const go = el('button', {id: 'latent-go', text: 'show'});
    const prev = el('button', {id: 'latent-prev', text: '◀ previous'});
    const next = el('button', {id: 'latent-next', text: 'next ▶'});
    const sortSel = el('select', {id: 'latent-sort'},
      ...[['nonzero', 'most frequent first'], ['max', 'largest max first'], ['rare', 'rarest firing first'],
          ['id', 'by id']].map(([v, t]) => el('option', {value: v, text: t})));
    const minIn = el('input', {id: 'latent-min-density', type: 'search', placeholder: 'min log10 density, e.g. -4'});
    const list = el('ol', {id: 'latent-list', class: 'latent-list'});
    app.append(el('div', {class: 'controls'}, el('label', {text: 'latent '}), idIn, go, prev, next),
               el('details', {id: 'latent-browse'}, el('summary', {text: 'browse latents (first 100 of a sorted list)'}),
                  el('div', {class: 'controls'}, sortSel, minIn), list));
    const view = el('section', {id: 'latent-view'});
    app.append(view);
    const dens = j => (tokens > 0 ? nz[j] / tokens : 0);
    function fillList() {
      const lo = parseFloat(minIn.value);
      let ids = [];
      for (let j = 0; j < d.d_sae; j++)
        if (nz[j] > 0 && (!Number.isFinite(lo) || Math.log10(dens(j)) >= lo)) ids.push(j);
      const k = sortSel.value;
      if (k === 'nonzero') ids.sort((a, b) => nz[b] - nz[a] || a - b);
      else if (k === 'rare') ids.sort((a, b) => nz[a] - nz[b] || a - b);
      else if (k === 'max') ids.sort((a, b) => mx[b] - mx[a] || a - b);
      list.replaceChildren(...ids.slice(0, 100).map(j => el('li', {}, el('a', {href: '#' + j, text: 'latent ' + j}),
        ' — fires on ' + fmt(100 * dens(j)) + ' % of tokens, max ' + fmt(mx[j]))));
      if (!ids.length) list.append(el('li', {text: 'no latent fired (with this density)'}));
    }
    sortSel.addEventListener('input', fillList);
    minIn.addEventListener('input', fillList);
    fillList();

    const chunks = {}, waiting = {};
    window.svLatentChunk = c => {
      const k = Math.floor(c.first / d.chunk);
      chunks[k] = c;
      for (const f of waiting[k] || []) f(c);
      delete waiting[k];
    };
    function loadChunk(k) {
      return new Promise((resolve, reject) => {
        if (chunks[k]) { resolve(chunks[k]); return; }
        if (waiting[k]) { waiting[k].push(resolve); return; }
        waiting[k] = [resolve];
        const s = document.createElement('script');
        s.src = d.chunk_dir + 'c' + String(k).padStart(5, '0') + '.js';
        s.onerror = () => { delete waiting[k]; reject(new Error('cannot load ' + s.src)); };
        document.head.append(s);
      });
    }
    /* Token spans shaded by activation / the latent's max; the example's own token outlined. */
    function exampleRow(x, max, cls, vocab) {
      const [token, value, start, ids, vals, over] = x;
      /* text: the chunk's vocab entry, or the example's own where it differs in context */
      let texts = null;
      if (vocab && Array.isArray(over)) {
        texts = ids.map(id => (Object.prototype.hasOwnProperty.call(vocab, id) ? vocab[id] : String(id)));
        for (const [i, t] of over) texts[i] = t;
      }
      const row = el('div', {class: 'example ' + cls, 'data-token': String(token), 'data-value': String(value)});
      row.append(el('span', {class: 'ex-value', text: fmt(value)}));
      const span = el('span', {class: 'ex-text'});
      ids.forEach((id, i) => {
        const v = vals[i], a = max > 0 ? Math.max(0, Math.min(1, v / max)) : 0;
        const t = el('span', {class: 'tok' + (start + i === token ? ' hit' : ''), 'data-id': String(id),
                              'data-v': String(v), title: 'token ' + (start + i) + ', id ' + id + ': ' +
                                (start + i === token ? value : v + ' (3 digits)'),
                              text: texts ? texts[i] : String(id)});
        if (!texts) t.classList.add('ids');
        if (v > 0) t.style.backgroundColor = 'rgba(255, 102, 0, ' + (0.1 + 0.9 * a).toFixed(3) + ')';
        span.append(t);
      });
      row.append(span);
      return row;
    }
    function render(L, vocab) {
      const [j, nonzero, max, hw, hist, top, intervals, m] = L;
      const [density, cah, encdec, maxdec, maxenc, nearest] = m;
      view.replaceChildren();
      view.setAttribute('data-latent', String(j));
      idIn.value = j;
      view.append(el('h2', {text: 'Latent ' + j}));
      const st = el('table', {class: 'data', id: 'latent-stats'});
      const rows = [['firing tokens', nonzero], ['firing fraction (density)', tokens > 0 ? nonzero / tokens : null],
        ['log10 density', nonzero > 0 && tokens > 0 ? Math.log10(nonzero / tokens) : null], ['max activation', max],
        ['consistent-activation heuristic', cah], ['encoder–decoder cosine', encdec],
        ['nearest decoder neighbour: max cos', maxdec], ['nearest encoder neighbour: max cos', maxenc]];
      for (const [k, v] of rows)
        st.append(el('tr', {}, el('td', {text: k}), el('td', {class: 'num', 'data-v': v === null ? '' : String(v),
                                                             title: String(v), text: fmt(v)})));
      view.append(st);
      if (nonzero === 0) { note(view, 'This latent never fired on an evaluated token of the dataset.'); return; }
      const grid = el('div', {class: 'grid'});
      view.append(grid);
      const hx = [], hy = [];
      hist.forEach((c, b) => { if (c > 0) { hx.push((b + 0.5) * hw); hy.push(c); } });
      chart(grid, 'latent-hist', 'Activation histogram', hist.length + ' bins of width ' + fmt(hw) +
            ' up to the next power of two above the max; every firing token counted.',
            [{type: 'bar', x: hx, y: hy, width: hw, name: 'tokens', marker: {color: palette[4]},
              hovertemplate: '%{x:.4g}: %{y}<extra></extra>'}], {xaxis: axis('activation'), yaxis: axis('tokens'), bargap: 0});
      /* neighbours: every latent's nearest one (feature_metrics.
       * nearest_decoder_latent, absent in results written before it), and
       * the SAE's most similar decoder pairs this latent is in */
      const nb = el('section', {class: 'chart-box', id: 'latent-neighbours'}, el('h3', {text: 'Nearest decoder neighbours'}));
      const pairs = (d.top_pairs || []).filter(([a, b]) => a === j || b === j);
      if (nearest !== null && nearest !== undefined && nearest >= 0)
        nb.append(el('p', {id: 'latent-nearest'}, 'Nearest decoder row: ',
          el('a', {href: '#' + nearest, 'data-latent': String(nearest), text: 'latent ' + nearest}), ', cos ' + fmt(maxdec)));
      else
        nb.append(el('p', {class: 'explain', text: 'Max cosine to another latent\u2019s decoder row: ' + fmt(maxdec) +
          ' (this result file does not name the latent: written before nearest_decoder_latent existed, or without geometry).'}));
      nb.append(el('p', {class: 'explain', text: 'Among the ' + (d.top_pairs || []).length + ' most similar decoder pairs ' +
        'of the SAE (metrics.geometry.top_decoder_pairs) this latent is in ' + pairs.length + '.'}));
      if (pairs.length) nb.append(el('ul', {}, ...pairs.map(([a, b, c]) => {
        const o = a === j ? b : a;
        return el('li', {}, el('a', {href: '#' + o, text: 'latent ' + o}), ': cos ' + fmt(c));
      })));
      grid.append(nb);
      const ts = el('section', {id: 'top-examples'}, el('h3', {text: 'Top examples (' + top.length + ')'}));
      for (const x of top) ts.append(exampleRow(x, max, 'top', vocab));
      view.append(ts);
      const is = el('section', {id: 'interval-samples'}, el('h3', {text: 'Interval samples'}),
        el('p', {class: 'explain', text: 'The activation range up to the max split into ' + intervals.length +
          ' intervals; in each, up to ' + pr.interval_k + ' tokens drawn at random (a fixed, seeded draw) and the ' +
          'number of firing tokens in it.'}));
      intervals.slice().reverse().forEach(([lo, hi, count, ex]) => {
        const g = el('div', {class: 'interval', 'data-count': String(count)},
          el('h4', {text: '[' + fmt(lo) + ', ' + fmt(hi) + '): ' + count + ' tokens'}));
        for (const x of ex) g.append(exampleRow(x, max, 'sample', vocab));
        if (!ex.length) g.append(el('p', {class: 'explain', text: 'no token'}));
        is.append(g);
      });
      view.append(is);
    }
    let shown = -1;
    async function show(j) {
      if (!(Number.isInteger(j) && j >= 0 && j < d.d_sae)) {
        view.replaceChildren(el('p', {class: 'note', text: 'No latent ' + j + ' (d_sae ' + d.d_sae + ').'}));
        return;
      }
      shown = j;
      try {
        const c = await loadChunk(Math.floor(j / d.chunk));
        if (shown === j) render(c.latents[j - c.first], c.vocab);
      } catch (e) {
        view.replaceChildren(el('p', {class: 'note', text: 'Latent data not available: ' + e.message +
          ' (the report directory is incomplete; run `saeval report CONFIG` again).'}));
      }
      document.body.setAttribute('data-rendered', '1');
    }
    const fromHash = () => {
      const h = window.location.hash.replace(/^#/, '');
      if (h !== '') return parseInt(h, 10);
      let best = 0; /* default: the most frequent latent */
      for (let j = 1; j < d.d_sae; j++) if (nz[j] > nz[best]) best = j;
      return best;
    };
    window.addEventListener('hashchange', () => show(fromHash()));
    const goTo = j => { window.location.hash = '#' + j; };
    go.addEventListener('click', () => goTo(parseInt(idIn.value, 10)));
    idIn.addEventListener('keydown', e => { if (e.key === 'Enter') goTo(parseInt(idIn.value, 10)); });
    prev.addEventListener('click', () => goTo(Math.max(0, shown - 1)));
    next.addEventListener('click', () => goTo(Math.min(d.d_sae - 1, shown + 1)));
    return show(fromHash());
  }

  if (data.kind === 'sweep') sweepPage();
  else if (data.kind === 'pair') pairPage();
  else if (data.kind === 'latents') { latentsPage(); return; }
  document.body.setAttribute('data-rendered', '1');
})();
