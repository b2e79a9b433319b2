// What the browser test (page.test.mjs) and the page benchmark (bench.mjs)
// share: a static server for dist/, Debian's Chromium, and the page's steps
// (wait until a model is ready, score sequences, run an ISM).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

/** Serves `dist` on a free port of 127.0.0.1 (a secure context: WebGPU needs
 * one). `downloads.wasm` counts the requests for the wasm module,
 * `downloads.bytes` the bytes served, `downloads.files` the paths. */
export async function serve(dist) {
  const downloads = { wasm: 0, bytes: 0, files: [] };
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    if (path.endsWith('.wasm')) downloads.wasm += 1;
    try {
      const file = join(dist, path === '/' ? 'index.html' : path);
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
      res.end(body);
      downloads.bytes += body.length;
      downloads.files.push(file);
    } catch {
      res.writeHead(404); res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${server.address().port}`, downloads, close: () => server.close() };
}

const COMMON = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** Debian's Chromium, headless, with `flags` added. */
export function launch(flags) {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: [...COMMON, ...flags] });
}

/** Waits until the status says a model whose name contains `name` is ready. */
export async function ready(page, name, timeout = 300_000) {
  await page.waitForFunction(
    (n) => { const s = document.querySelector('#status'); return s.dataset.state === 'ready' && s.textContent.includes(n); },
    name, { timeout });
}

/** Scores `sequences` on the Score tab: the predictions in table order
 * (their spreads: `spreads(page)` after it). */
export async function score(page, sequences) {
  await page.click('#tab-score');
  await page.fill('#sequences', sequences.join('\n'));
  await page.click('#run-score');
  await page.waitForFunction((n) => document.querySelectorAll('#score-table tbody tr').length === n
    && !document.querySelector('#score-results').hidden, sequences.length, { timeout: 600_000 });
  return page.$$eval('#score-table tbody tr', (rows) => rows.map((r) => Number(r.dataset.prediction)));
}

/** The spreads of the Score table's rows, in table order, and whether its
 * spread column is shown. */
export async function spreads(page) {
  const values = await page.$$eval('#score-table tbody tr', (rows) => rows.map((r) => Number(r.dataset.sd)));
  const shown = await page.$eval('#score-table th.spread', (e) => !e.hidden);
  return { values, shown };
}

/** Runs the ISM of `sequence` (`cells` substitutions) until its heat map is
 * drawn: the seconds from the click, and the cells as drawn. */
export async function ism(page, sequence, cells) {
  await page.click('#tab-ism');
  await page.fill('#ism-sequence', sequence);
  const started = Date.now();
  await page.click('#run-ism');
  // The click hides the last result until the new one is drawn.
  await page.waitForFunction((n) => document.querySelectorAll('#ism-svg .cell').length === n
    && !document.querySelector('#ism-results').hidden, cells, { timeout: 600_000 });
  const seconds = (Date.now() - started) / 1000;
  const drawn = await page.$$eval('#ism-svg .cell', (all) => all.map((c) => ({
    position: Number(c.dataset.position), alt: c.dataset.alt, prediction: Number(c.dataset.prediction),
    sd: Number(c.dataset.sd), deltaSd: Number(c.dataset.deltaSd) })));
  return { seconds, drawn };
}

/** Runs a design from the Design tab's form (`form`: field values, blank for
 * absent ones; `random` a count instead of `start`) until its table is drawn:
 * the seconds from the click, the sequences scored, the designs as listed, and
 * `spec`, the DesignSpec the page built from the form as its search read it
 * (serde's JSON; null when the design stopped with a problem). */
export async function design(page, form) {
  await page.click('#tab-design');
  const fields = {
    start: '#design-start', random: '#design-random-count', target: '#design-target',
    rounds: '#design-rounds', population: '#design-population', generations: '#design-generations',
    maxMutations: '#design-max-mutations', gcMin: '#design-gc-min', gcMax: '#design-gc-max',
    homopolymer: '#design-homopolymer', forbidden: '#design-forbidden', seed: '#design-seed', keep: '#design-keep',
  };
  // Caution is offered with an ensemble only.
  if (await page.$eval('#design-caution', (e) => !e.closest('label').hidden)) fields.caution = '#design-caution';
  for (const [key, selector] of Object.entries(fields)) {
    if (key === 'start' && form.random) continue;
    await page.fill(selector, form[key] === undefined ? '' : String(form[key]));
  }
  await page.setChecked('#design-random', Boolean(form.random));
  const target = ['max', 'min'].includes(form.objective) ? form.objective : 'target';
  await page.selectOption('#design-objective', target);
  if (target === 'target') await page.fill('#design-target', String(form.objective));
  await page.selectOption('#design-strategy', form.strategy);
  const started = Date.now();
  await page.click('#run-design');
  await page.waitForFunction(() => (!document.querySelector('#design-results').hidden
    || !document.querySelector('#design-problem').hidden)
    && document.querySelector('#design progress').hidden, null, { timeout: 600_000 });
  const seconds = (Date.now() - started) / 1000;
  const problem = await page.$eval('#design-problem', (e) => (e.hidden ? null : e.textContent));
  const designs = await page.$$eval('#design-table tbody tr',
    (rows) => rows.map((r) => ({ sequence: r.dataset.sequence, prediction: Number(r.dataset.prediction), sd: Number(r.dataset.sd) })));
  const scored = Number(await page.$eval('#design-summary', (e) => e.dataset.scored));
  const spec = await page.$eval('#design-results', (e) => (e.hidden ? null : e.dataset.spec));
  return { seconds, problem, designs, scored, spec };
}

/** Loads a table of measurements into the Train tab (waiting until it is
 * read: the run button enabled, or a problem shown); the problem, or null. */
export async function loadMeasurements(page, path) {
  await page.click('#tab-train');
  await page.setInputFiles('#train-file', path);
  await page.waitForFunction(() => !document.querySelector('#run-train').disabled
    || !document.querySelector('#train-problem').hidden, null, { timeout: 120_000 });
  return page.$eval('#train-problem', (e) => (e.hidden ? null : e.textContent));
}

/** Fine-tuning (`mode`: quick or full) of the loaded table with `holdout`
 * percent held out, until the tuned model (named after `file`) is ready: the
 * seconds from the click, in full mode the seconds to the first estimate of
 * the time left, and the report's [Pearson, Spearman] rows (before, after, ridge). */
export async function fineTune(page, file, holdout, mode = 'quick') {
  // The split is checked as the share is typed (the button waits for it).
  await page.fill('#train-holdout', String(holdout));
  await page.check(`input[name="train-mode"][value="${mode}"]`);
  const started = Date.now();
  await page.click('#run-train');
  // Full mode shows the time left all along (quick mode between its parts only).
  const estimate = mode === 'full'
    ? page.waitForFunction(() => / left$/.test(document.querySelector('#train-eta').textContent),
      null, { timeout: 600_000, polling: 250 }).then(() => (Date.now() - started) / 1000, () => null)
    : null;
  await ready(page, `tuned on ${file}`, mode === 'full' ? 3_600_000 : 300_000);
  const seconds = (Date.now() - started) / 1000;
  const scores = await page.$$eval('#train-report tbody tr',
    (all) => all.map((r) => [Number(r.dataset.pearson), Number(r.dataset.spearman)]));
  return { seconds, estimated: await estimate, scores };
}
