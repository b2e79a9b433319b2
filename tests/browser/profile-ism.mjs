// Where the page's in-silico mutagenesis (ISM) spends its time inside the wasm
// workers, in headless Chromium on the CPU path (?backend=cpu): loads the demo
// model, runs one warm-up ISM of the page's example sequence (compiling,
// first allocations), then records a Chrome trace with V8's sampling CPU
// profiler on (every V8 isolate is sampled: the page and each model worker)
// while the same ISM runs --repeats times, and reads the samples back:
//   - the ISM's wall time per repeat (click to drawn heat map, from Node);
//   - per thread with more than 5% of all busy samples (the DedicatedWorker
//     threads are the model workers): sampled, idle and busy ms, and the top
//     functions by self time (ms, % of that thread's busy time);
//   - the top functions over all worker threads together, and the same time
//     in coarse categories (matmul, conv, memory, allocator, JS, ...: GROUPS
//     below, first match wins, easy to change).
// Only samples between the marks put on the page before and after each
// repeat count (all samples when a trace has no marks). wasm functions show
// under their name-section names (or wasm-function[N] without one). A
// profile, not a benchmark: sampling costs some speed, so take the wall
// times from bench.mjs.
// Usage (scripts/profile-page.sh builds the page first):
//   node profile-ism.mjs DIST [--repeats 2] [--top 30] [--out FILE.json]
//     [--trace TRACE.json]
// --out: the aggregated numbers as JSON; --trace: the raw Chrome trace as
// well (it opens in DevTools' Performance panel).
//   node profile-ism.mjs --analyse TRACE.json [--top 30] [--out FILE.json]
// reads a saved trace instead (no browser, no DIST): for a --trace file, or
// to check the parsing on a hand-made trace. `analyse` and `report` are
// exported for the same purpose.
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

// The trace categories. Sampling is per V8 isolate: with
// disabled-by-default-v8.cpu_profiler on, every isolate (the page's and each
// DedicatedWorker's) runs its own sampler and writes `Profile` and
// `ProfileChunk` events; nothing worker-specific is needed. `.hires` asked for
// 100 µs instead of 1 ms in older V8 (100 µs is now the fixed interval).
// blink.user_timing carries the marks around each repeat; the devtools.*,
// v8 and v8.execute ones are what DevTools records (tasks, GC, compiles), so
// that a --trace file reads well in its Performance panel. `-*` first: nothing
// else (thread and process names come as metadata whatever the categories).
// (Seen in Chromium 156: a worker's Profile event is on its own thread, its
// ProfileChunks on a v8:ProfEvntProc thread; a worker's sampling starts at
// its first job after tracing starts, the last few ms before the stop can be
// missing, and a waiting worker samples as (idle).)
export const TRACE_CATEGORIES = [
  '-*',
  'disabled-by-default-v8.cpu_profiler',
  'disabled-by-default-v8.cpu_profiler.hires',
  'v8',
  'v8.execute',
  'devtools.timeline',
  'disabled-by-default-devtools.timeline',
  'blink.user_timing',
];

// Coarse categories of a sampled function, first match wins: [category,
// test], the test a RegExp on the function's name or a function of the frame
// {name, url, file, codeType} (`file`: the url's last path segment, without
// query; `codeType`: V8's 'JS', 'wasm' or 'other'). JS-to-wasm and wasm-to-JS
// wrappers say JS with a wasm:// url, hence their row before JS's; JS
// built-ins (postMessage, ...) say JS without a url. Time in (idle) is never
// busy time and stays out of every category.
export const GROUPS = [
  ['gc', (f) => f.name === '(garbage collector)'],
  ['program', (f) => f.name === '(program)' || f.name === '(root)'], // native code outside JS/wasm (or not attributed)
  ['js↔wasm', /js-to-wasm|wasm-to-js|JSToWasm|WasmToJS/i],
  ['JS', (f) => /\.m?js$/i.test(f.file) || (f.codeType === 'JS' && !f.url)],
  ['matmul', /gemm|matmul/i],
  ['winograd', /winograd/i],
  ['conv', /conv(?!ert)/i],
  ['memory', /memcpy|memmove|memset/i],
  ['allocator', /dlmalloc|dlfree|dlrealloc|malloc|calloc|realloc|dealloc|__rust_alloc|__rdl_|alloc::alloc::|raw_vec|(^|[^a-z])free([^a-z]|$)/i],
  ['serialization', /serde|json/i],
];
export const OTHER = 'other';

const MARK = 'promoscope-profile'; // marks: `${MARK}:start:N`, `${MARK}:end:N`
const IDLE = '(idle)';

/** The coarse category of `frame` ({name, url, file, codeType}) by GROUPS. */
export function categorise(frame) {
  for (const [category, test] of GROUPS) {
    if (test instanceof RegExp ? test.test(frame.name) : test(frame)) return category;
  }
  return OTHER;
}

const fileOf = (url) => (url || '').replace(/[?#].*$/, '').split('/').pop();
const isJs = (url) => /\.m?js$/i.test(fileOf(url));

/** A sampled function's name as aggregated: the name alone for wasm and
 * built-ins; JS functions with their file and line (anonymous ones abound). */
function labelOf(callFrame) {
  const name = callFrame.functionName || (callFrame.codeType === 'JS' || isJs(callFrame.url) ? '(anonymous)' : '(unnamed)');
  if (!isJs(callFrame.url)) return name;
  const line = Number.isInteger(callFrame.lineNumber) && callFrame.lineNumber >= 0 ? `:${callFrame.lineNumber + 1}` : '';
  return `${name} [${fileOf(callFrame.url)}${line}]`;
}

/** The ISM windows from the marks put before and after each repeat (as
 * performance.mark in blink.user_timing, and console.timeStamp in
 * devtools.timeline): [{repeat, start, end}] in trace µs, sorted; and the
 * repeats with a start but no end (a trace cut short). */
function windowsOf(events) {
  const marks = new Map();
  const re = new RegExp(`^${MARK}:(start|end):(\\d+)$`);
  for (const ev of events) {
    const label = ev.name === 'TimeStamp' ? (ev.args?.data?.message ?? ev.args?.data?.name) : ev.name;
    const m = typeof label === 'string' && re.exec(label);
    if (!m || typeof ev.ts !== 'number') continue;
    const key = `${m[1]}:${m[2]}`;
    marks.set(key, Math.min(marks.get(key) ?? Infinity, ev.ts));
  }
  const windows = [], unfinished = [];
  for (const [key, start] of marks) {
    const [kind, repeat] = key.split(':');
    if (kind !== 'start') continue;
    const end = marks.get(`end:${repeat}`);
    if (end === undefined) unfinished.push(Number(repeat));
    else windows.push({ repeat: Number(repeat), start, end });
  }
  return { windows: windows.sort((a, b) => a.start - b.start), unfinished };
}

/** Reassembles the V8 CPU profiles of a Chrome trace: a `Profile` event (on
 * the sampled thread: its pid/tid, its ts the start) and `ProfileChunk`
 * events (written on V8's profiler thread, so matched by pid and profile id
 * only) with new nodes, samples (node ids) and timeDeltas (µs, the first from
 * the start). Returns [{pid, tid, id, nodes: Map(id -> {callFrame, parent}),
 * times: [µs], samples: [node id]}], the samples sorted by time. */
export function profilesOf(events) {
  const byKey = new Map();
  const get = (ev) => {
    const id = ev.id ?? ev.id2?.local ?? ev.id2?.global ?? '?';
    const key = `${ev.pid}:${id}`;
    if (!byKey.has(key)) byKey.set(key, { pid: ev.pid, id, tid: undefined, start: undefined, chunks: [] });
    return byKey.get(key);
  };
  for (const ev of events) {
    if (ev.name === 'Profile') {
      const p = get(ev);
      p.tid = ev.tid;
      p.start = typeof ev.ts === 'number' ? ev.ts : ev.args?.data?.startTime;
    } else if (ev.name === 'ProfileChunk') {
      get(ev).chunks.push(ev);
    }
  }
  const profiles = [];
  for (const p of byKey.values()) {
    if (!p.chunks.length) continue;
    p.chunks.sort((a, b) => (a.ts ?? 0) - (b.ts ?? 0)); // stable: emission order
    const nodes = new Map();
    const samples = [], deltas = [];
    for (const chunk of p.chunks) {
      const data = chunk.args?.data ?? {};
      const cpu = data.cpuProfile ?? {};
      for (const n of cpu.nodes ?? []) {
        const old = nodes.get(n.id);
        nodes.set(n.id, { callFrame: n.callFrame ?? {}, parent: n.parent ?? old?.parent });
        for (const child of n.children ?? []) {
          const c = nodes.get(child);
          if (c) c.parent = n.id; else nodes.set(child, { callFrame: {}, parent: n.id });
        }
      }
      const s = cpu.samples ?? [], d = data.timeDeltas ?? [];
      const count = Math.min(s.length, d.length);
      if (s.length !== d.length) console.warn(`profile ${p.pid}:${p.id}: a chunk has ${s.length} samples and ${d.length} time deltas; using ${count}`);
      samples.push(...s.slice(0, count));
      deltas.push(...d.slice(0, count));
    }
    // Without its Profile event (trace cut at the start), the thread is
    // unknown: the chunks' own (profiler) thread stands in.
    const tid = p.tid ?? p.chunks[0].tid;
    let t = p.start ?? (p.chunks[0].ts - deltas.reduce((a, b) => a + b, 0));
    const order = samples.map((node, i) => { t += deltas[i]; return { node, t }; });
    order.sort((a, b) => a.t - b.t);
    profiles.push({ pid: p.pid, tid, id: p.id, headless: p.tid === undefined, nodes,
      times: order.map((o) => o.t), samples: order.map((o) => o.node) });
  }
  return profiles;
}

/** Thread and process names from the metadata events (ph 'M'). */
function namesOf(events) {
  const threads = new Map(), processes = new Map();
  for (const ev of events) {
    if (ev.ph !== 'M') continue;
    if (ev.name === 'thread_name') threads.set(`${ev.pid}:${ev.tid}`, ev.args?.name);
    if (ev.name === 'process_name') processes.set(ev.pid, ev.args?.name);
  }
  return { threads, processes };
}

const add = (map, key, ms) => map.set(key, (map.get(key) ?? 0) + ms);
const sorted = (map) => [...map].sort((a, b) => b[1] - a[1]);

/** The aggregated profile of a Chrome trace (an object with traceEvents, or
 * the bare array): per thread and over the worker threads, self time by
 * function and by category. A sample's time is the gap to the next sample of
 * its profile (the last one gets none), clipped to the ISM window it falls
 * in when the trace has marks. `top`: how many functions to keep per thread
 * (the overall list keeps every function). */
export function analyse(trace, { top = 30 } = {}) {
  const events = Array.isArray(trace) ? trace : trace.traceEvents ?? [];
  const { windows, unfinished } = windowsOf(events);
  const { threads: threadNames, processes } = namesOf(events);
  const profiles = profilesOf(events);

  // Which window (end) a time falls in: null when outside all of them.
  const windowEnd = (t) => {
    if (!windows.length) return Infinity;
    for (const w of windows) if (t >= w.start && t < w.end) return w.end;
    return null;
  };

  const threads = new Map(); // pid:tid -> aggregate
  for (const p of profiles) {
    const key = `${p.pid}:${p.tid}`;
    if (!threads.has(key)) {
      // Without its Profile event the key is the chunks' (profiler) thread.
      const name = p.headless ? `unknown thread (profile ${p.id} has no Profile event)` : threadNames.get(key) ?? 'unnamed thread';
      threads.set(key, { pid: p.pid, tid: p.tid, name, process: processes.get(p.pid) ?? null,
        worker: /DedicatedWorker/i.test(name), samples: 0, totalMs: 0, idleMs: 0,
        functions: new Map(), categories: new Map(), intervals: [] });
    }
    const th = threads.get(key);
    const info = new Map(); // node id -> {label, category}
    const about = (id) => {
      if (!info.has(id)) {
        const callFrame = p.nodes.get(id)?.callFrame ?? {};
        const label = labelOf(callFrame);
        const frame = { name: callFrame.functionName ?? '', url: callFrame.url ?? '', file: fileOf(callFrame.url),
          codeType: callFrame.codeType ?? '' };
        info.set(id, { label, idle: callFrame.functionName === IDLE, category: categorise(frame) });
      }
      return info.get(id);
    };
    for (let i = 0; i + 1 < p.samples.length; i += 1) {
      const t = p.times[i];
      const end = windowEnd(t);
      if (end === null) continue;
      const ms = (Math.min(p.times[i + 1], end) - t) / 1000;
      if (!(ms > 0)) continue;
      const { label, idle, category } = about(p.samples[i]);
      th.samples += 1;
      th.totalMs += ms;
      th.intervals.push(p.times[i + 1] - t);
      if (idle) { th.idleMs += ms; continue; }
      add(th.functions, label, ms);
      th.categories.set(label, category);
    }
  }

  const all = [...threads.values()].filter((th) => th.samples > 0);
  for (const th of all) th.busyMs = th.totalMs - th.idleMs;
  const busyAll = all.reduce((s, th) => s + th.busyMs, 0);
  const median = (xs) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : null);

  // Several workers share a name: number them, busiest first.
  all.sort((a, b) => b.busyMs - a.busyMs);
  const seen = new Map();
  for (const th of all) {
    const n = (seen.get(th.name) ?? 0) + 1;
    seen.set(th.name, n);
    th.label = `${th.name}${all.filter((o) => o.name === th.name).length > 1 ? ` #${n}` : ''} (pid ${th.pid}, tid ${th.tid})`;
  }

  const rows = (functions, categories, busy, limit) => sorted(functions).slice(0, limit)
    .map(([name, ms]) => ({ name, category: categories.get(name), ms, pct: busy ? (100 * ms) / busy : 0 }));
  const groupRows = (functions, categories, busy) => {
    const byGroup = new Map();
    for (const [name, ms] of functions) add(byGroup, categories.get(name), ms);
    return sorted(byGroup).map(([category, ms]) => ({ category, ms, pct: busy ? (100 * ms) / busy : 0 }));
  };

  const threadsOut = all.map((th) => ({
    label: th.label, name: th.name, pid: th.pid, tid: th.tid, process: th.process, worker: th.worker,
    samples: th.samples, medianIntervalUs: median(th.intervals), totalMs: th.totalMs, idleMs: th.idleMs,
    busyMs: th.busyMs, shareOfBusyPct: busyAll ? (100 * th.busyMs) / busyAll : 0,
    top: rows(th.functions, th.categories, th.busyMs, top),
    categories: groupRows(th.functions, th.categories, th.busyMs),
  }));

  // Over the worker threads (all threads when none is named as a worker).
  const workers = all.some((th) => th.worker) ? all.filter((th) => th.worker) : all;
  const functions = new Map(), categories = new Map();
  for (const th of workers) {
    for (const [name, ms] of th.functions) { add(functions, name, ms); categories.set(name, th.categories.get(name)); }
  }
  const busyWorkers = workers.reduce((s, th) => s + th.busyMs, 0);
  return {
    windows, unfinished, windowed: windows.length > 0,
    windowMs: windows.reduce((s, w) => s + (w.end - w.start) / 1000, 0),
    profiles: profiles.length,
    threads: threadsOut,
    overall: {
      threads: workers.map((th) => th.label),
      workersNamed: all.some((th) => th.worker),
      totalMs: workers.reduce((s, th) => s + th.totalMs, 0),
      idleMs: workers.reduce((s, th) => s + th.idleMs, 0),
      busyMs: busyWorkers,
      functions: rows(functions, categories, busyWorkers, Infinity),
      categories: groupRows(functions, categories, busyWorkers),
    },
  };
}

const MAX_NAME = 110;
const short = (s) => (s.length > MAX_NAME ? `${s.slice(0, MAX_NAME - 1)}…` : s);
const ms = (x) => `${x.toFixed(1)} ms`.padStart(11);
const pct = (x) => `${x.toFixed(1)}%`.padStart(6);

/** The printed report of `analyse`'s result: lines. `seconds`: the ISM wall
 * times per repeat, when known; `minShare`: the % of all busy time a thread
 * needs to be listed. */
export function report(result, { top = 30, seconds = null, minShare = 5 } = {}) {
  const lines = [];
  if (seconds) {
    lines.push('ISM wall time per repeat (click to drawn heat map, profiler on):');
    seconds.forEach((s, i) => lines.push(`  repeat ${i + 1}: ${s.toFixed(2)} s`));
    lines.push('');
  }
  lines.push(result.windowed
    ? `Samples inside ${result.windows.length} ISM window(s), ${result.windowMs.toFixed(0)} ms in all; ${result.profiles} V8 profile(s).`
    : `No ISM marks in the trace: every sample counts; ${result.profiles} V8 profile(s).`);
  if (result.unfinished.length) lines.push(`WARNING: repeat(s) ${result.unfinished.join(', ')} have a start mark but no end mark (trace cut short? buffer full?)`);
  if (!result.threads.length) lines.push('WARNING: no CPU samples in the trace (was disabled-by-default-v8.cpu_profiler on?)');
  const table = (rows) => rows.map((r) => `  ${ms(r.ms)} ${pct(r.pct)}  ${(r.category ?? '').padEnd(13)} ${short(r.name)}`);
  const groups = (rows) => rows.map((r) => `  ${ms(r.ms)} ${pct(r.pct)}  ${r.category}`);

  for (const th of result.threads) {
    if (th.shareOfBusyPct <= minShare) continue;
    lines.push('', `== ${th.label}${th.process ? ` [${th.process}]` : ''}: ${th.shareOfBusyPct.toFixed(1)}% of all busy time`,
      `   sampled ${th.totalMs.toFixed(1)} ms (${th.samples} samples, median interval ${th.medianIntervalUs?.toFixed(0)} µs), idle ${th.idleMs.toFixed(1)} ms, busy ${th.busyMs.toFixed(1)} ms`,
      `   top ${top} functions by self time (% of this thread's busy time):`,
      ...table(th.top.slice(0, top)));
  }
  const hidden = result.threads.filter((th) => th.shareOfBusyPct <= minShare);
  if (hidden.length) lines.push('', `(${hidden.length} thread(s) at or under ${minShare}% of busy time not listed: ${hidden.map((th) => th.label).join('; ')})`);

  const o = result.overall;
  lines.push('', `== Over ${o.workersNamed ? `the ${o.threads.length} worker thread(s)` : `all ${o.threads.length} thread(s) (no DedicatedWorker thread named in the trace)`}: sampled ${o.totalMs.toFixed(1)} ms, idle ${o.idleMs.toFixed(1)} ms, busy ${o.busyMs.toFixed(1)} ms`,
    `   top ${top} functions by self time (% of their busy time):`,
    ...table(o.functions.slice(0, top)),
    '', '   by category:',
    ...groups(o.categories));
  return lines;
}

async function main() {
  const { values: opts, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repeats: { type: 'string', default: '2' },
      top: { type: 'string', default: '30' },
      out: { type: 'string' },
      trace: { type: 'string' },
      analyse: { type: 'string' },
    },
  });
  const top = Number(opts.top);
  let trace, seconds = null, extra = {};
  if (opts.analyse) {
    trace = JSON.parse(await readFile(opts.analyse, 'utf8'));
  } else {
    const [dist] = positionals;
    if (!dist) throw new Error('usage: node profile-ism.mjs DIST [--repeats 2] [--top 30] [--out FILE.json] [--trace TRACE.json] | --analyse TRACE.json');
    const repeats = Number(opts.repeats);
    // Only the browser path needs Playwright.
    const { ism, launch, ready, serve } = await import('./harness.mjs');
    const server = await serve(dist);
    const errors = [];
    try {
      const browser = await launch([]);
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`${server.base}/?backend=cpu`);
        await ready(page, 'demo model');
        const status = (await page.textContent('#status')).trim();
        const workers = await page.evaluate(() => navigator.hardwareConcurrency);
        const example = await page.inputValue('#ism-sequence');
        const cells = [...example].reduce((n, base) => n + ('ACGT'.includes(base.toUpperCase()) ? 3 : 4), 0);
        console.log(`${status} (navigator.hardwareConcurrency ${workers}); ISM of the ${example.length}-bp example, ${cells} substitutions`);
        const warm = await ism(page, example, cells);
        console.log(`warm-up ISM (not profiled): ${warm.seconds.toFixed(2)} s`);
        const mark = (label) => page.evaluate((l) => { performance.mark(l); console.timeStamp(l); }, label);
        await browser.startTracing(page, { categories: TRACE_CATEGORIES });
        seconds = [];
        try {
          for (let run = 1; run <= repeats; run += 1) {
            await mark(`${MARK}:start:${run}`);
            seconds.push((await ism(page, example, cells)).seconds);
            await mark(`${MARK}:end:${run}`);
            console.log(`profiled ISM ${run}/${repeats}: ${seconds.at(-1).toFixed(2)} s`);
          }
        } finally {
          const buffer = await browser.stopTracing();
          trace = JSON.parse(buffer.toString('utf8'));
          if (opts.trace) await writeFile(opts.trace, buffer);
        }
        extra = { status, example: example.length, cells, warmupSeconds: warm.seconds, seconds, categories: TRACE_CATEGORIES,
          chromium: browser.version() };
      } finally {
        await browser.close();
      }
    } finally {
      server.close();
    }
    if (errors.length) throw new Error(`the page reported errors: ${errors.join('; ')}`);
    console.log('');
  }
  const result = analyse(trace, { top });
  console.log(report(result, { top, seconds }).join('\n'));
  if (opts.out) await writeFile(opts.out, `${JSON.stringify({ ...extra, ...result }, null, 1)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
