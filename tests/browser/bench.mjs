// bench.mjs - the console's performance figures (`make bench-console`).
//
//   first load   bytes transferred for the console's own files (compressed,
//                cold cache) and the time until the dashboard's heading is
//                on screen and until its figures are, on loopback
//   instances    the instances page of a 10,000-instance service: from the
//                route change to the table and its summary on screen
//   services     the services page of a 100,000-instance registry (10,000
//                services), unfiltered and searched: from the route change
//                to the rows on screen
// Each figure is the median of RUNS runs; nothing is asserted (timing on a
// shared machine is noisy: see docs/CONSOLE.md for measured figures).

import {Node, inst, launch} from './harness.mjs';

const RUNS = Number(process.env.RUNS || 5);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function meta(i) {
  return {version: '2.' + (i % 7), team: 'team-' + (i % 13), build: String(100000 + i), region: 'us-east', canary: String(i % 10 === 0)};
}

// A browser context signed in as the node's admin: the token in the tab's
// sessionStorage before the console's scripts run, as a login leaves it.
async function signedIn(browser, token) {
  const ctx = await browser.newContext({viewport: {width: 1280, height: 800}});
  await ctx.addInitScript((t) => sessionStorage.setItem('artemis.console.token', t), token);
  return ctx;
}

async function firstLoad(browser, node, token) {
  const ctx = await signedIn(browser, token);
  const page = await ctx.newPage();
  const sizes = [];
  page.on('requestfinished', async (req) => {
    if (!new URL(req.url()).pathname.startsWith('/console/')) return;
    const s = await req.sizes();
    sizes.push(s.responseBodySize + s.responseHeadersSize);
  });
  await page.goto(node.base + '/console/');
  await page.locator('h1', {hasText: 'Dashboard'}).waitFor();
  const shell = await page.evaluate(() => performance.now());
  await page.locator('.card-sub', {hasText: ' up · '}).waitFor({timeout: 60000});
  const data = await page.evaluate(() => performance.now());
  await page.waitForLoadState('load');
  await ctx.close();
  return {bytes: sizes.reduce((a, b) => a + b, 0), files: sizes.length, shell, data};
}

// Time from setting the hash to `done` holding, measured in the page.
async function routeTime(page, hash, done) {
  return page.evaluate(async ({hash, done}) => {
    const re = new RegExp(done);
    const t0 = performance.now();
    location.hash = hash;
    for (;;) {
      await new Promise((r) => requestAnimationFrame(r));
      const m = document.querySelector('#main');
      if (m && re.test(m.textContent)) return performance.now() - t0;
      if (performance.now() - t0 > 60000) return NaN;
    }
  }, {hash, done: done.source});
}

const node = await Node.start({registry: {max_instances: '200000'}});
const browser = await launch();
try {
  const big = [];
  for (let i = 0; i < 10000; i++) big.push(inst('bench-service', 'bench-' + i, {ip: `10.${i >> 8 & 255}.${i & 255}.1`, metadata: meta(i)}));
  await node.register(big);

  const token = await node.login();
  const loads = [];
  for (let r = 0; r < RUNS; r++) loads.push(await firstLoad(browser, node, token));
  console.log(`first load: ${loads[0].files} files, ${(loads[0].bytes / 1024).toFixed(1)} KB transferred (compressed, headers included)`);
  console.log(`first load: dashboard heading after ${median(loads.map((l) => l.shell)).toFixed(0)} ms, ` +
    `its figures (10,000 instances) after ${median(loads.map((l) => l.data)).toFixed(0)} ms (median of ${RUNS})`);

  const page = await (await signedIn(browser, token)).newPage();
  await page.goto(node.base + '/console/#/cluster');
  await page.locator('h1', {hasText: 'Cluster'}).waitFor();
  const inst10k = [];
  for (let r = 0; r < RUNS; r++) {
    inst10k.push(await routeTime(page, '#/services/bench-service', /10,000 of 10,000 instances shown/));
    await routeTime(page, '#/cluster', /This node/);
  }
  console.log(`instances page, 10,000 instances: table on screen ${median(inst10k).toFixed(0)} ms after the route change ` +
    `(median of ${RUNS}; includes fetching the service, about ${(JSON.stringify(big).length / 1e6).toFixed(1)} MB of JSON)`);

  const rest = [];
  for (let s = 0; s < 9999; s++) for (let i = 0; i < 9; i++) rest.push(inst('svc-' + s, `svc-${s}-${i}`, {metadata: meta(i)}));
  await node.register(rest);
  // A new document each run: nothing loaded yet.  The summary reads
  // "10,000 services, …" (paged by the node) or "10,000 of 10,000
  // services, …" (the whole registry loaded, before the paging).
  let doc = 0;
  const fresh = async (hash, done) => {
    await page.goto(node.base + '/console/?run=' + doc++ + '#/cluster');
    await page.locator('h1', {hasText: 'Cluster'}).waitFor();
    return routeTime(page, hash, done);
  };
  const svc100k = [];
  const search = [];
  for (let r = 0; r < RUNS; r++) {
    svc100k.push(await fresh('#/services', /10,000 (of 10,000 )?services, 99,991 instances/));
    search.push(await fresh('#/services?q=svc-123', /11 of 10,000 services( match)?, 99 instances/));
  }
  console.log(`services page, 99,991 instances in 10,000 services: rows on screen ${median(svc100k).toFixed(0)} ms after ` +
    `the route change (median of ${RUNS}; a new document, nothing loaded before)`);
  console.log(`services page searched (?q=svc-123, 11 services): rows on screen ${median(search).toFixed(0)} ms after ` +
    `the route change (median of ${RUNS}; a new document)`);
  await page.goto(node.base + '/console/?scroll#/services');
  await page.locator('[role=grid] .vt-row').first().waitFor({timeout: 60000});
  const scroll = await page.evaluate(async () => {
    const g = document.querySelector('[role=grid]');
    const t0 = performance.now();
    for (let i = 0; i < 60; i++) {
      g.scrollTop += 400;
      await new Promise((r) => requestAnimationFrame(r));
    }
    return (performance.now() - t0) / 60;
  });
  console.log(`services page: ${scroll.toFixed(1)} ms per scrolled frame; rows in the DOM: ` +
    `${await page.locator('.vt-row').count()}`);
} finally {
  await browser.close();
  await node.stop();
}
