// harness.mjs - what the browser tests and the console benchmark share:
// a real `artemis server` on a kernel-picked loopback port with its own
// shm region and data directory, HTTP helpers to seed it, and Debian's
// chromium driven by playwright-core.
//
// Environment: ARTEMIS_BIN (default build/artemis), CHROMIUM (default
// /usr/bin/chromium), CONSOLE_OUT (screenshots; default build/console-test).
// Nothing here sleeps to synchronise: waitFor() polls a condition.

import {spawn} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.ARTEMIS_BIN || path.join(REPO, 'build', 'artemis');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const OUT = process.env.CONSOLE_OUT || path.join(REPO, 'build', 'console-test');
export const REGION = 'us-east';
export const ZONE = 'zone-1';
// The first admin of every test node ([auth] initial_admin_password).
export const ADMIN_PASSWORD = 'browser-admin-pw';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function waitFor(cond, {timeout = 20000, interval = 50, what = 'condition'} = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await cond();
    } catch (e) {
      last = e;
    }
    if (last && !(last instanceof Error)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function inst(serviceId, instanceId, extra = {}) {
  return {regionId: REGION, zoneId: ZONE, serviceId, instanceId, ip: '10.1.0.1', port: 8080, protocol: 'http',
    url: 'http://10.1.0.1:8080/' + instanceId, status: 'up', ...extra};
}

export class Node {
  // http, registry, cluster: keys added to (or replacing) those sections;
  // port, clusterPort: chosen beforehand (peers name each other's).
  static async start({http = {}, registry = {}, cluster = {}, port = 0, clusterPort = 0} = {}) {
    const n = new Node();
    n.port = port || await freePort();
    n.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'artemis-browser-'));
    n.shm = `/artemis-browser-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
    const sections = {
      node: {name: 'browser-' + n.port, region: REGION, zone: ZONE, listen: '127.0.0.1:' + n.port, workers: '2',
        data_dir: path.join(n.dir, 'data')},
      registry: {shm_name: n.shm, max_instances: '200000', lease_ttl_ms: '600000', reap_interval_ms: '100', ...registry},
      http,
      cluster: {listen: '127.0.0.1:' + (clusterPort || await freePort()), ...cluster},
      // The cheapest Argon2id: logins take milliseconds.
      auth: {initial_admin_password: ADMIN_PASSWORD, password_memlimit_kib: '8192', password_opslimit: '1'},
      log: {file: path.join(n.dir, 'artemis.log'), level: 'info'},
    };
    const conf = Object.entries(sections).filter(([, kv]) => Object.keys(kv).length)
      .map(([s, kv]) => `[${s}]\n` + Object.entries(kv).map(([k, v]) => `${k} = ${v}`).join('\n')).join('\n\n');
    n.conf = path.join(n.dir, 'artemis.conf');
    fs.writeFileSync(n.conf, conf + '\n');
    const err = fs.openSync(path.join(n.dir, 'stderr.log'), 'a');
    n.proc = spawn(BIN, ['server', '-c', n.conf, '--fresh'], {stdio: ['ignore', err, err], cwd: n.dir});
    n.exited = new Promise((r) => n.proc.on('exit', r));
    await waitFor(async () => {
      if (n.proc.exitCode !== null) throw new Error('artemis exited: ' + n.log().slice(-2000));
      return n.log().includes('] serving: ');
    }, {timeout: 15000, what: 'artemis serving on ' + n.base});
    return n;
  }

  get base() {
    return 'http://127.0.0.1:' + this.port;
  }

  log() {
    let text = '';
    for (const f of ['artemis.log', 'stderr.log']) {
      try {
        text += fs.readFileSync(path.join(this.dir, f), 'utf8');
      } catch {
        // not written yet
      }
    }
    return text;
  }

  async post(p, body) {
    const res = await fetch(this.base + p, {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(body)});
    const text = await res.text();
    if (!res.ok) throw new Error(`POST ${p}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  }

  async status(p, token) {
    return (await fetch(this.base + p, {headers: token ? {Authorization: 'Bearer ' + token} : {}})).status;
  }

  // A call of the management API: {status, body}.
  async api(method, p, body, token) {
    const headers = {'Content-Type': 'application/json'};
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch(this.base + p, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
    const text = await res.text();
    return {status: res.status, body: text ? JSON.parse(text) : null};
  }

  // POST /api/auth/login: the access token.
  async login(username = 'admin', password = ADMIN_PASSWORD) {
    const r = await this.api('POST', '/api/auth/login', {username, password});
    if (r.status !== 200) throw new Error(`login as ${username}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.data.accessToken;
  }

  async register(instances) {
    for (let i = 0; i < instances.length; i += 2000) {
      const d = await this.post('/artemis/api/registry/register.json', {instances: instances.slice(i, i + 2000)});
      if (d.failedInstances) throw new Error('register refused: ' + JSON.stringify(d.failedInstances[0]));
    }
  }

  async unregister(instances) {
    await this.post('/artemis/api/registry/unregister.json', {instances});
  }

  async stop() {
    if (this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
    fs.rmSync('/dev/shm/' + this.shm.slice(1), {force: true});
    const crash = /signal (6|11)\b|SIGSEGV|SIGABRT|AddressSanitizer/i.exec(this.log());
    fs.rmSync(this.dir, {recursive: true, force: true});
    if (crash) throw new Error('artemis logged a crash: ' + crash[0]);
  }
}

export function launch() {
  return chromium.launch({executablePath: CHROMIUM, args: CHROMIUM_ARGS});
}

// A page that fails the test on any uncaught script error.
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({viewport: {width: 1280, height: 800}, ...opts});
  const page = await context.newPage();
  page.setDefaultTimeout(Number(process.env.BROWSER_TIMEOUT_MS || 20000));
  page.errors = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  return page;
}

export async function screenshot(page, name) {
  fs.mkdirSync(OUT, {recursive: true});
  await page.evaluate(() => window.scrollTo(0, 0));
  // Passing notices ("Publish: done.") would cover the page.  Hidden from
  // a script: the console's CSP refuses an injected stylesheet.
  const toasts = (v) => page.evaluate((vis) => document.querySelectorAll('.toasts').forEach((t) => { t.style.visibility = vis; }), v);
  await toasts('hidden');
  await page.screenshot({path: path.join(OUT, name + '.png'), fullPage: true});
  await toasts('');
}
