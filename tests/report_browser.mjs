// Browser test of the HTML report: Debian's /usr/bin/chromium, headless,
// driven by playwright-core (installed by the build from web/package-lock.json).
//   node report_browser.mjs RESULTS_DIR ARTIFACT_DIR [--expect-downstream] [--expect-failed N]
// Opens RESULTS_DIR/report/index.html and one pair page from file://, fails on
// any console error or page error, checks that every chart rendered the
// traces/points expected from the result files (computed here, separately
// from the C code that wrote the pages), that the sweep table read back from
// the DOM equals all_eval_results.json, and writes screenshots to ARTIFACT_DIR.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(process.env.SV_WEB_NODE_MODULES + '/');
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const resultsDir = args[0], artDir = args[1];
const expectDownstream = args.includes('--expect-downstream');
const noCharts = args.includes('--no-charts'); // report written without plotly.min.js
const li = args.indexOf('--latents'); // feature files read by report_latents_dump.py
const latentDump = li >= 0 ? JSON.parse(fs.readFileSync(args[li + 1], 'utf8')) : null;
const fi = args.indexOf('--expect-failed');
const expectFailed = fi >= 0 ? Number(args[fi + 1]) : 0;
fs.mkdirSync(artDir, { recursive: true });

let passed = 0, failed = 0;
function check(cond, what) {
  if (cond) passed++;
  else { failed++; console.log('FAIL: ' + what); }
}

// The test's own map from table column to result-file path (not the C table).
const paths = {
  explained_variance: ['metrics', 'reconstruction_quality', 'explained_variance'],
  mse: ['metrics', 'reconstruction_quality', 'mse'],
  cossim: ['metrics', 'reconstruction_quality', 'cossim'],
  l0: ['metrics', 'sparsity', 'l0'],
  dead_fraction: ['metrics', 'sparsity', 'dead_fraction'],
  l2_ratio: ['metrics', 'shrinkage', 'l2_ratio'],
  absorption: ['metrics', 'geometry', 'decoder_mean_abs_cos'],
  quality: ['metrics', 'health', 'quality_score', 'score_out_of_4'],
  ce_loss_score: ['metrics', 'model_behavior_preservation', 'ce_loss_score'],
  kl_div_score: ['metrics', 'model_behavior_preservation', 'kl_div_score'],
};
const at = (o, p) => p.reduce((x, k) => (x && typeof x === 'object' ? x[k] : undefined), o);
const num = v => (typeof v === 'number' && Number.isFinite(v) ? v : null);

const all = JSON.parse(fs.readFileSync(path.join(resultsDir, 'all_eval_results.json'), 'utf8'));
const genPath = path.join(resultsDir, 'generalization.json');
const gen = fs.existsSync(genPath) ? JSON.parse(fs.readFileSync(genPath, 'utf8')) : null;
const ok = all.filter(r => r.status === 'ok');
const datasets = [...new Set(all.map(r => r.dataset))];
const hasDown = ok.some(r => num(at(r, paths.ce_loss_score)) !== null);
check(hasDown === expectDownstream, 'downstream metrics present = ' + expectDownstream);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on('console', m => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
page.on('pageerror', e => errors.push('page error: ' + e.message));
page.on('requestfailed', r => errors.push('request failed: ' + r.url()));
page.on('dialog', d => { errors.push('dialog opened: ' + d.message()); d.dismiss(); });

async function open(file) {
  await page.goto(pathToFileURL(file).href);
  await page.waitForSelector('body[data-rendered="1"]', { timeout: 60000 });
  await page.waitForTimeout(300);
}
// Traces and drawn points/bars of a chart, counted in its SVG.
async function rendered(id) {
  return page.evaluate(id => {
    const d = document.getElementById(id);
    if (!d) return null;
    return {
      scatterTraces: d.querySelectorAll('.scatterlayer .trace').length,
      points: d.querySelectorAll('.scatterlayer path.point').length,
      barTraces: d.querySelectorAll('.barlayer .trace').length,
      bars: d.querySelectorAll('.barlayer .point').length,
      heatmaps: d.querySelectorAll('.hm image').length,
      nochart: d.classList.contains('nochart'),
      // what the page gave Plotly (for histogram totals)
      y: (d.data || []).map(t => Array.from(t.y || [])),
    };
  }, id);
}
const sum = a => a.reduce((s, v) => s + v, 0);

// ---- sweep page
const index = path.join(resultsDir, 'report', 'index.html');
await open(index);
const table = await page.evaluate(() => Array.from(document.querySelectorAll('#sweep-table tbody tr')).map(tr => ({
  sae: tr.dataset.sae, ds: tr.dataset.dataset, status: tr.dataset.status,
  cells: Object.fromEntries(Array.from(tr.querySelectorAll('td[data-v]')).map(td => [td.dataset.key,
    { v: td.dataset.v, text: td.textContent }])),
})));
check(table.length === all.length, `table rows ${table.length} == records ${all.length}`);
const keys = ['explained_variance', 'mse', 'cossim', 'l0', 'dead_fraction', 'l2_ratio', 'absorption', 'quality']
  .concat(expectDownstream ? ['ce_loss_score', 'kl_div_score'] : []);
let cellsChecked = 0;
all.forEach((r, i) => {
  const row = table[i];
  if (!row) return;
  check(row.sae === r.sae_id && row.ds === r.dataset && row.status === r.status, `row ${i} is ${r.sae_id}/${r.dataset}`);
  for (const k of keys) {
    const want = num(at(r, paths[k])), cell = row.cells[k];
    if (!cell) { check(false, `row ${i} has no ${k} cell`); continue; }
    const got = cell.v === '' ? null : Number(cell.v);
    check(got === want, `row ${i} ${k}: DOM ${cell.v} == JSON ${want}`);
    check(want === null ? cell.text === '–' : cell.text.length > 0, `row ${i} ${k} shows a value`);
    cellsChecked++;
  }
  check(Object.keys(row.cells).length === keys.length, `row ${i}: ${keys.length} metric columns`);
});
console.log(`sweep table: ${table.length} rows, ${cellsChecked} metric cells equal all_eval_results.json`);

// Without Plotly every chart slot must say so, and the tables still work.
if (noCharts) {
  const slots = await page.evaluate(() => [document.querySelectorAll('.chart').length,
    document.querySelectorAll('.nochart').length, document.querySelectorAll('script[src="plotly.min.js"]').length]);
  check(slots[0] === 0 && slots[1] >= datasets.length + 3 && slots[2] === 0,
    `no-charts report: ${slots[1]} slots say why, ${slots[0]} charts, ${slots[2]} Plotly scripts`);
}
// frontier panels: one per dataset (and per dataset for CE loss score when present)
const ys = [['ev', paths.explained_variance]].concat(expectDownstream ? [['ce', paths.ce_loss_score]] : []);
if (!noCharts) for (const [tag, yp] of ys) {
  for (let di = 0; di < datasets.length; di++) {
    const pts = ok.filter(r => r.dataset === datasets[di] && num(at(r, paths.l0)) !== null && num(at(r, yp)) !== null);
    const archs = new Set(pts.map(r => r.sae_cfg.architecture));
    const got = await rendered(`frontier-${tag}-${di}`);
    check(got && !got.nochart, `frontier-${tag}-${di} drawn`);
    if (got) check(got.scatterTraces === archs.size && got.points === pts.length,
      `frontier-${tag}-${di}: ${got.scatterTraces} traces/${got.points} points, want ${archs.size}/${pts.length}`);
  }
}
check(await page.evaluate(() => !document.getElementById('frontier-ce-0')) === !expectDownstream,
  'CE-loss frontier only with downstream metrics');
// generalization heatmap
if (gen && !noCharts) {
  const rows = gen.rows.filter(r => num(at(r, ['metrics', 'explained_variance', 'drop_percent'])) !== null);
  const marked = rows.filter(r => r.ev_drop_vs_expected === 'above' || r.ev_drop_vs_expected === 'below');
  const kinds = new Set(marked.map(r => r.ev_drop_vs_expected));
  const got = rows.length ? await rendered('gen-heatmap') : null; // no OOS dataset: a note instead
  check(rows.length ? got && got.heatmaps === 1 : await page.evaluate(() => !document.getElementById('gen-heatmap')),
    'generalization heatmap drawn when an OOS row has a drop');
  if (got) check(got.scatterTraces === kinds.size && got.points === marked.length,
    `heatmap marks: ${got.scatterTraces} traces/${got.points} marked cells, want ${kinds.size}/${marked.length}`);
}
// dead fraction (grouped by dataset) and absorption (one bar per SAE)
if (!noCharts) {
  const dead = ok.filter(r => num(at(r, paths.dead_fraction)) !== null);
  const got = await rendered('dead-bars');
  check(got && got.bars === dead.length && got.barTraces === new Set(dead.map(r => r.dataset)).size,
    `dead-bars: ${got && got.bars} bars, want ${dead.length}`);
  const saes = new Set(ok.filter(r => num(at(r, paths.absorption)) !== null).map(r => r.sae_id));
  const ab = await rendered('absorption-bars');
  check(ab && ab.bars === saes.size, `absorption-bars: ${ab && ab.bars} bars, want ${saes.size}`);
}
// failed and missing pairs listed
const listed = await page.evaluate(() => document.querySelectorAll('#failed-list li').length);
const nBad = all.filter(r => r.status !== 'ok').length;
check(listed === nBad && nBad === expectFailed, `failed/missing listed ${listed}, records ${nBad}, expected ${expectFailed}`);
await page.screenshot({ path: path.join(artDir, 'sweep.png'), fullPage: true });
// sorting and filtering work
await page.click('#sweep-table th[data-key="l0"]');
const l0s = await page.evaluate(() => Array.from(document.querySelectorAll('#sweep-table tbody td[data-key="l0"]'))
  .map(td => td.dataset.v).filter(v => v !== '').map(Number));
check(l0s.every((v, i) => i === 0 || l0s[i - 1] <= v), 'sorting by L0 orders the rows');
await page.fill('#filter', ok.length ? ok[0].sae_id : 'zzz');
const shown = await page.evaluate(() => Array.from(document.querySelectorAll('#sweep-table tbody tr')).filter(t => !t.hidden).length);
check(shown >= 1 && shown <= all.length, 'text filter narrows the table');
await page.fill('#filter', '');

// ---- one pair page: the first evaluated pair, checked against its own file
if (ok.length) {
  const href = await page.evaluate(() => document.querySelector('#sweep-table tbody a').getAttribute('href'));
  const first = await page.evaluate(() => {
    const tr = document.querySelector('#sweep-table tbody a').closest('tr');
    return [tr.dataset.sae, tr.dataset.dataset];
  });
  const rec = JSON.parse(fs.readFileSync(path.join(resultsDir, `${first[0].replace(/\//g, '-')}__${first[1]}.json`), 'utf8'));
  await open(path.join(resultsDir, 'report', href));
  if (noCharts) {
    const slots = await page.evaluate(() => document.querySelectorAll('.nochart').length);
    check(slots === 6, `pair page without Plotly: ${slots} of 6 chart slots say why`);
  } else {
  const f = rec.feature_metrics, n = f.feature_density.length, m = Math.min(n, 4000);
  const sample = Array.from({ length: m }, (_, i) => (m >= n ? i : Math.floor(i * n / m)));
  const alive = f.feature_density.filter(d => d > 0).length;
  const dens = await rendered('density-hist');
  check(dens && dens.bars === dens.y[0].length && sum(dens.y[0]) === alive,
    `density histogram: ${dens && sum(dens.y[0])} latents, want ${alive} (every firing latent)`);
  const cah = await rendered('cah-scatter');
  const cahWant = sample.filter(j => f.feature_density[j] > 0 && f.consistent_activation_heuristic[j] >= 0).length;
  check(cah && cah.scatterTraces === 1 && cah.points === cahWant, `CAH scatter: ${cah && cah.points} points, want ${cahWant}`);
  const ed = await rendered('encdec-hist');
  check(ed && ed.bars === ed.y[0].length && sum(ed.y[0]) === n, `enc-dec cosine histogram: ${ed && sum(ed.y[0])} latents, want ${n}`);
  const em = await rendered('encoder-matrix');
  check(em && em.scatterTraces === 3 && em.points === 3 * m, `scatter matrix: ${em && em.points} points, want ${3 * m}`);
  const l0 = await rendered('l0-hist');
  check(l0 && l0.bars === l0.y[0].length && sum(l0.y[0]) === rec.metrics.token_stats.tokens_evaluated,
    `L0 histogram: ${l0 && sum(l0.y[0])} tokens, want ${rec.metrics.token_stats.tokens_evaluated}`);
  const dc = await rendered('deccos-hist');
  check(dc && dc.bars === dc.y[0].length && sum(dc.y[0]) === n * (n - 1) / 2,
    `decoder cosine histogram: ${dc && sum(dc.y[0])} pairs, want ${n * (n - 1) / 2}`);
  }
  const health = await page.evaluate(() => document.querySelectorAll('#health-ranges tr').length +
    document.querySelectorAll('#health-quality tr').length);
  check(health >= 8, `health rubric tables rendered (${health} rows)`);
  const rating = await page.evaluate(() => document.querySelector('#health-quality tr.total .rating').textContent);
  check(rating === rec.metrics.health.quality_score.rating, `rating ${rating}`);
  await page.screenshot({ path: path.join(artDir, 'pair.png'), fullPage: true });
}

// ---- latent pages: every pair's page links them when its feature file is
// readable (says why when not, nothing when there is none); the latents shown
// equal the feature file as read by h5py.
if (latentDump) {
  const f32 = Math.fround;
  await open(index);
  const links = await page.evaluate(() => Array.from(document.querySelectorAll('#sweep-table tbody a'))
    .map(a => [a.closest('tr').dataset.sae, a.getAttribute('href')]));
  let latentsChecked = 0, examplesChecked = 0;
  for (const [sae, href] of links) {
    await open(path.join(resultsDir, 'report', href));
    const info = await page.evaluate(() => ({
      link: (document.querySelector('#latent-link a') || {}).href || null,
      notes: Array.from(document.querySelectorAll('p.note')).map(p => p.textContent),
    }));
    const want = latentDump[sae];
    const hasFile = fs.existsSync(path.join(resultsDir, `${sae}__in_sample.features.h5`));
    if (!hasFile) { check(!info.link && !info.notes.some(n => n.includes('Feature file')), `${sae}: no feature file, no latent link`); continue; }
    if (!want) { check(!info.link && info.notes.some(n => n.includes('not shown')), `${sae}: damaged feature file: the page says why`); continue; }
    check(!!info.link, `${sae}: pair page links its latent pages`);
    if (!info.link) continue;
    // a click on a CAH point opens that latent
    const target = Object.keys(want.latents).map(Number).find(j => j !== want.default);
    if (!noCharts) {
      const clickId = await page.evaluate(() => {
        const d = document.getElementById('cah-scatter');
        const id = d.data[0].text[0];
        d.emit('plotly_click', { points: [{ text: id }] });
        return id;
      });
      await page.waitForSelector(`#latent-view[data-latent="${clickId}"]`, { timeout: 60000 });
      check(page.url().endsWith('_latents.html#' + clickId), `${sae}: clicking CAH point ${clickId} opens it`);
    }
    // without a hash: the most frequent latent; then each picked latent via the hash
    await page.goto(info.link.replace(/#.*$/, ''));
    await page.waitForSelector('#latent-view[data-latent]', { timeout: 60000 });
    const first = await page.evaluate(() => document.getElementById('latent-view').dataset.latent);
    check(Number(first) === want.default, `${sae}: default latent ${first}, want ${want.default}`);
    for (const [js, L] of Object.entries(want.latents)) {
      await page.evaluate(j => { window.location.hash = '#' + j; }, js);
      await page.waitForSelector(`#latent-view[data-latent="${js}"]`, { timeout: 60000 });
      const dom = await page.evaluate(() => ({
        stats: Array.from(document.querySelectorAll('#latent-stats td[data-v]')).map(td => td.dataset.v),
        top: Array.from(document.querySelectorAll('#top-examples .example')).map(e => ({
          token: Number(e.dataset.token), value: Number(e.dataset.value),
          ids: Array.from(e.querySelectorAll('.tok')).map(t => Number(t.dataset.id)),
          text: Array.from(e.querySelectorAll('.tok')).map(t => t.textContent),
          hit: Array.from(e.querySelectorAll('.tok')).findIndex(t => t.classList.contains('hit')),
          elements: e.querySelectorAll('.ex-text *:not(.tok)').length,
        })),
        intervals: Array.from(document.querySelectorAll('#interval-samples .interval')).map(g =>
          [Number(g.dataset.count), g.querySelectorAll('.example').length]),
        hist: (document.getElementById('latent-hist') || {}).data,
        nearest: (document.querySelector('#latent-nearest a') || {dataset: {}}).dataset.latent,
      }));
      const tag = `${sae} latent ${js}`;
      if (L.nonzero > 0 && L.nearest !== null)
        check(Number(dom.nearest) === L.nearest, `${tag}: nearest decoder neighbour ${dom.nearest} == ${L.nearest}`);
      check(Number(dom.stats[0]) === L.nonzero, `${tag}: firing tokens ${dom.stats[0]} == ${L.nonzero}`);
      check(f32(Number(dom.stats[3])) === f32(L.max), `${tag}: max ${dom.stats[3]} == ${L.max}`);
      check(dom.top.length === L.top.length, `${tag}: ${dom.top.length} top examples, file has ${L.top.length}`);
      L.top.forEach((x, k) => {
        const g = dom.top[k];
        if (!g) return;
        check(g.token === x.token && f32(g.value) === f32(x.value), `${tag} top ${k}: token ${g.token}/${x.token}, value ${g.value}/${x.value}`);
        check(JSON.stringify(g.ids) === JSON.stringify(x.ids), `${tag} top ${k}: window ids`);
        check(JSON.stringify(g.text) === JSON.stringify(x.text), `${tag} top ${k}: token text ${JSON.stringify(g.text)} == ${JSON.stringify(x.text)}`);
        check(g.hit === x.token - x.start, `${tag} top ${k}: example token marked at ${g.hit}`);
        check(g.elements === 0, `${tag} top ${k}: token text inserted as text, not markup`);
        examplesChecked++;
      });
      // intervals shown from the highest; counts and samples as in the file
      const iv = dom.intervals.slice().reverse();
      check(iv.length === L.interval_samples.length, `${tag}: ${iv.length} intervals, want ${L.interval_samples.length}`);
      L.interval_samples.forEach((n, g) => check(iv[g] && iv[g][0] === L.interval_count[g] && iv[g][1] === n,
        `${tag} interval ${g}: ${iv[g]} == [${L.interval_count[g]}, ${n}]`));
      if (L.nonzero > 0 && !noCharts)
        check(dom.hist && dom.hist[0].y.reduce((a, b) => a + b, 0) === L.nonzero, `${tag}: histogram counts every firing token`);
      latentsChecked++;
    }
    if (sae === links[0][0]) await page.screenshot({ path: path.join(artDir, 'latents.png'), fullPage: true });
  }
  check(latentsChecked >= 3 * 4, `latents checked: ${latentsChecked}`);
  console.log(`latent pages: ${latentsChecked} latents, ${examplesChecked} top examples equal the feature files`);
}

await browser.close();
for (const e of errors) console.log('FAIL: ' + e);
failed += errors.length;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
