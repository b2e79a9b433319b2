// The page's own speed, as a user meets it, in headless Chromium: the demo
// model's load (navigation to "ready"), scoring a batch of real sequences on
// the Score tab (click to drawn table), and the ISM of the page's 110-bp
// example (click to drawn heat map) and designs from it (click to drawn table,
// greedy and evolutionary: sequences scored per second) and quick fine-tuning
// on the Train tab (the first --tune rows of DATA, 10% held out: click to the
// tuned model ready), each timed from Node and repeated; with --full N, one
// full fine-tuning on the first N rows (click to the first estimate of the
// time left, and to the tuned model ready).
// A benchmark, not a test: it prints a Markdown table (and appends it to
// --out) and checks nothing but that each step finished.
// Usage (scripts/bench-page.sh builds the page first):
//   node bench.mjs DIST DATA [--backends cpu,webgpu] [--sequences 1000]
//     [--repeats 3] [--workers N] [--tune 5000] [--full 0] [--out FILE]
// DATA: DREAM lines (`SEQUENCE<TAB>EXPRESSION`); the first --sequences of at
// most 111 bases are scored. `webgpu` forces burn's wgpu backend on whatever
// adapter Chromium has (with --enable-unsafe-webgpu; on a machine without a
// GPU that is SwiftShader, a CPU rasteriser: use few sequences there).
import { appendFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { design, fineTune, ism, launch, loadMeasurements, ready, score, serve } from './harness.mjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backends: { type: 'string', default: 'cpu' },
    sequences: { type: 'string', default: '1000' },
    repeats: { type: 'string', default: '3' },
    workers: { type: 'string' },
    tune: { type: 'string', default: '5000' },
    full: { type: 'string', default: '0' },
    out: { type: 'string' },
  },
});
const [dist, data] = positionals;
if (!dist || !data) throw new Error('usage: node bench.mjs DIST DATA [--backends cpu,webgpu] [--sequences N] [--repeats R] [--workers N] [--out FILE]');
const count = Number(opts.sequences);
const repeats = Number(opts.repeats);
const sequences = (await readFile(data, 'utf8')).split('\n')
  .map((line) => line.split('\t')[0].trim()).filter((s) => s && s.length <= 111).slice(0, count);
if (sequences.length < count) throw new Error(`${data}: only ${sequences.length} sequences of at most 111 bases`);
const folder = await mkdtemp(join(tmpdir(), 'promoscope-bench-'));
// The first `rows` lines of DATA as a file of their own: its name.
async function firstRows(rows) {
  const name = `first-${rows}.txt`;
  await writeFile(join(folder, name), `${(await readFile(data, 'utf8')).split('\n').filter((l) => l.trim()).slice(0, rows).join('\n')}\n`);
  return name;
}
const tuneRows = Number(opts.tune);
const tuneName = await firstRows(tuneRows);
const fullRows = Number(opts.full);
const fullName = fullRows ? await firstRows(fullRows) : null;

// Greedy: 3 rounds of every substitution (incremental, as ISM); evolve: a
// population of 64 over 3 generations (whole sequences).
const DESIGNS = { greedy: { rounds: 3 }, evolve: { population: 64, generations: 3 } };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cell = (xs, unit, digits) => `${median(xs).toFixed(digits)} ${unit} (${xs.map((x) => x.toFixed(digits)).join(', ')})`;

// What a first visit downloads: the files served, raw and as a server would
// send them compressed (gzip and brotli at their highest levels).
async function transferSizes(files) {
  const sizes = { raw: 0, gzip: 0, brotli: 0, files: files.length };
  for (const file of files) {
    const body = await readFile(file);
    sizes.raw += body.length;
    sizes.gzip += gzipSync(body, { level: 9 }).length;
    sizes.brotli += brotliCompressSync(body).length;
  }
  return sizes;
}
const MB = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

const server = await serve(dist);
const columns = [], errors = [];
let firstVisit = null;
try {
  for (const backend of opts.backends.split(',')) {
    const browser = await launch(backend === 'webgpu' ? ['--enable-unsafe-webgpu'] : []);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => errors.push(e.message));
    const query = `?backend=${backend}${opts.workers ? `&workers=${opts.workers}` : ''}`;
    const loads = [], rates = [], isms = [];
    Object.assign(server.downloads, { bytes: 0, files: [] });
    for (let run = 0; run < repeats; run += 1) {
      const started = Date.now();
      await page.goto(`${server.base}/${query}`);
      await ready(page, 'demo model');
      loads.push((Date.now() - started) / 1000);
      if (run === 0) firstVisit ??= await transferSizes(server.downloads.files);
    }
    const status = (await page.textContent('#status')).trim();
    console.log(`== ${backend}: ${status}`);
    for (let run = 0; run < repeats; run += 1) {
      const started = Date.now();
      await score(page, sequences);
      rates.push(sequences.length / ((Date.now() - started) / 1000));
      console.log(`   scored ${sequences.length} sequences: ${rates.at(-1).toFixed(0)} seq/s`);
    }
    const example = await page.inputValue('#ism-sequence');
    const cells = [...example].reduce((n, base) => n + ('ACGT'.includes(base.toUpperCase()) ? 3 : 4), 0);
    for (let run = 0; run < repeats; run += 1) {
      isms.push((await ism(page, example, cells)).seconds);
      console.log(`   ISM of ${example.length} bp: ${isms.at(-1).toFixed(2)} s`);
    }
    const designs = { greedy: [], evolve: [] };
    for (let run = 0; run < repeats; run += 1) {
      for (const [strategy, settings] of Object.entries(DESIGNS)) {
        const d = await design(page, { start: example, objective: 'max', strategy, ...settings, forbidden: '', seed: run + 1, keep: 10 });
        if (d.problem) throw new Error(`design: ${d.problem}`);
        designs[strategy].push(d.scored / d.seconds);
        console.log(`   design (${strategy}): ${d.scored} sequences in ${d.seconds.toFixed(2)} s`);
      }
    }
    const tunes = [];
    for (let run = 0; run < repeats; run += 1) {
      const problem = await loadMeasurements(page, join(folder, tuneName));
      if (problem) throw new Error(`fine-tuning: ${problem}`);
      const { seconds, scores } = await fineTune(page, tuneName, 10);
      tunes.push(seconds);
      console.log(`   quick fine-tuning on ${tuneRows} rows: ${seconds.toFixed(1)} s (held-out Pearson ${scores.map((r) => r[0].toFixed(3)).join(' / ')})`);
      await page.click('#restore-model');
      await ready(page, 'demo model');
    }
    let full = null;
    if (fullName) {
      const problem = await loadMeasurements(page, join(folder, fullName));
      if (problem) throw new Error(`full fine-tuning: ${problem}`);
      full = await fineTune(page, fullName, 10, 'full');
      console.log(`   full fine-tuning on ${fullRows} rows: ${full.seconds.toFixed(0)} s, the first estimate after ${full.estimated?.toFixed(0)} s (held-out Pearson ${full.scores.map((r) => r[0].toFixed(3)).join(' / ')})`);
      await page.click('#restore-model');
      await ready(page, 'demo model');
    }
    columns.push({ status, loads, rates, isms, designs, tunes, full, example, cells });
    await browser.close();
  }
} finally {
  server.close();
}

// (Debian's wrapper script complains on stderr when asked for its version.)
const chromium = execFileSync('/usr/bin/chromium', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
const lines = [
  `#### The page in headless Chromium: ${chromium}, ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Command: \`${['bash scripts/bench-page.sh', ...process.argv.slice(4)].join(' ')}\`. Median of ${repeats} runs, then every run in order (the first includes compiling).`,
  '',
  `| figure | ${columns.map((c) => c.status.replace(/^Ready: /, '')).join(' | ')} |`,
  `|---|${columns.map(() => '---:').join('|')}|`,
  `| demo model load (navigation to ready) | ${columns.map((c) => cell(c.loads, 's', 1)).join(' | ')} |`,
  `| scoring ${count.toLocaleString('en-US')} real sequences (click to drawn table) | ${columns.map((c) => cell(c.rates, 'seq/s', 0)).join(' | ')} |`,
  `| a first visit downloads (${firstVisit.files} files: raw / gzip -9 / brotli) | ${MB(firstVisit.raw)} / ${MB(firstVisit.gzip)} / ${MB(firstVisit.brotli)}${columns.length > 1 ? ' (the first backend)' : ''} |`,
  `| ISM of the ${columns[0].example.length}-bp example, ${columns[0].cells} substitutions (click to drawn heat map) | ${columns.map((c) => cell(c.isms, 's', 2)).join(' | ')} |`,
  `| design from the example, greedy, 3 rounds (sequences scored per second, click to drawn table) | ${columns.map((c) => cell(c.designs.greedy, 'seq/s', 0)).join(' | ')} |`,
  `| design from the example, evolutionary, population 64, 3 generations (same) | ${columns.map((c) => cell(c.designs.evolve, 'seq/s', 0)).join(' | ')} |`,
  `| quick fine-tuning on ${tuneRows.toLocaleString('en-US')} rows of DATA, 10% held out (click to the tuned model ready) | ${columns.map((c) => cell(c.tunes, 's', 1)).join(' | ')} |`,
  ...(fullRows ? [
    `| full fine-tuning on ${fullRows.toLocaleString('en-US')} rows of DATA, 10% held out, 4 passes (click to the tuned model ready; to the first estimate) | ${columns.map((c) => `${(c.full.seconds / 60).toFixed(1)} min; ${c.full.estimated?.toFixed(0)} s`).join(' | ')} |`,
    `| its held-out Pearson: before / after / k-mer ridge | ${columns.map((c) => c.full.scores.map((r) => r[0].toFixed(3)).join(' / ')).join(' | ')} |`,
  ] : []),
  '',
];
console.log(lines.join('\n'));
if (errors.length) throw new Error(`the page reported errors: ${errors.join('; ')}`);
if (opts.out) await appendFile(opts.out, `\n${lines.join('\n')}`);
