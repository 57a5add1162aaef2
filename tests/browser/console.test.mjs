// console.test.mjs - the web console in a real browser (Debian's chromium
// through playwright-core) against a real node with seeded data: every
// page, every call, the node's own management, routing and auth APIs.
//
//   registry pages   dashboard, services, instances, cluster: their data,
//                    search, the detail of an instance, unregister
//   operations       pull instances out and see discovery hide them, a zone
//                    pull-out, groups and a rule published, a canary, and
//                    the audit log showing each of those actions
//   sign-in, roles   login, logout, a revoked and an expired session going
//                    back to the login page and returning, a viewer with no
//                    write controls refused when it forges the calls, an
//                    operator, users and sessions, CSRF from another origin
//   live             instances registered by another process appear and
//                    disappear without a reload
//   cluster          two nodes replicating: peers, state, lag
//   xss              names, metadata, operators full of markup and script
//                    are shown as text and nothing runs
//   keyboard         skip link, navigation, search, the grid's keys, focus
//                    visible; on every page: no script error, every
//                    control labelled
//   layout           a phone-sized screen and the dark theme
//
// The node requires a login ([auth] enabled = on): most pages are opened
// with a token already in the tab's sessionStorage, as after a login.
// Tests of one describe may build on the ones before them (the audit test
// checks the actions of the operations above it), never on other describes.
//
// Run by `make browser-test` (part of `make test`).  Screenshots go to
// $CONSOLE_OUT (build/console-test).

import {after, before, describe, test} from 'node:test';
import assert from 'node:assert/strict';
import {Node, freePort, inst, launch, newPage, screenshot, waitFor, ADMIN_PASSWORD, REGION} from './harness.mjs';

let node;
let browser;
let adminToken;
const pages = [];
const TOKEN_KEY = 'artemis.console.token'; // console/lib/auth.js

const SEED = {
  'order-service': 6,
  'payment-service': 3,
  'user-service': 4,
};

function seedInstances() {
  const out = [];
  for (const [svc, n] of Object.entries(SEED)) {
    for (let i = 0; i < n; i++) {
      out.push(inst(svc, `${svc}-${i}`, {zoneId: i % 2 ? 'zone-2' : 'zone-1', ip: `10.2.${out.length}.${i + 1}`,
        status: i === n - 1 ? 'starting' : 'up', metadata: {version: '1.' + i, team: 'core'}}));
    }
  }
  return out;
}

// A page signed in (the token in sessionStorage, as a login leaves it).
async function open(hash, opts, token = adminToken) {
  const page = await newPage(browser, opts);
  pages.push(page);
  await page.context().addInitScript(([k, t]) => sessionStorage.setItem(k, t), [TOKEN_KEY, token]);
  await page.goto(node.base + '/console/#' + hash);
  return page;
}

// A page that is not signed in yet.
async function fresh(hash) {
  const page = await newPage(browser);
  pages.push(page);
  if (hash !== undefined) await page.goto(node.base + '/console/#' + hash);
  return page;
}

async function login(page, user, pass) {
  await page.locator('#login-user').waitFor();
  await page.fill('#login-user', user);
  await page.fill('#login-pass', pass);
  await page.getByRole('button', {name: 'Sign in'}).click();
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent()) || '';
}

async function rowsText(page, label) {
  return page.locator(`[role=grid][aria-label="${label}"] .vt-row`).allTextContents();
}

// The instance ids discovery (Java's path, what clients get) returns.
async function discovered(serviceId) {
  const d = await node.post('/artemis/api/discovery/service.json', {regionId: REGION,
    discoveryConfig: {serviceId, regionId: REGION}});
  return ((d.service && d.service.instances) || []).map((i) => i.instanceId).sort();
}

// The node's answer, asked with the admin's token (these paths need one).
const api = (method, p, body) => node.api(method, p, body, adminToken);

// What every test checks on its page at the end: no script error, no
// dialog, and every visible control has an accessible name.
async function checkPage(page) {
  assert.deepEqual(page.errors, [], 'uncaught script errors');
  assert.deepEqual(page.dialogs, [], 'dialogs opened');
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button, [role=grid]')]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
    .map((el) => el.outerHTML.slice(0, 100)));
  assert.deepEqual(unlabelled, [], 'controls without a label');
}

before(async () => {
  node = await Node.start();
  await node.register(seedInstances());
  adminToken = await node.login();
  for (const [username, role] of [['olga', 'operator'], ['vera', 'viewer']]) {
    const r = await node.api('POST', '/api/auth/users', {username, role, password: role + '-pass'}, adminToken);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  browser = await launch();
});

after(async () => {
  for (const p of pages) await p.context().close().catch(() => {});
  if (browser) await browser.close();
  if (node) await node.stop();
});

describe('registry pages against the node', () => {
  test('dashboard shows the registry and charts from /metrics', async () => {
    const page = await open('/');
    await page.locator('h1', {hasText: 'Dashboard'}).waitFor();
    await waitFor(async () => /up/.test(await text(page, '.card:has-text("Instances") .card-sub')), {what: 'services loaded'});
    assert.equal(await text(page, '.card:has-text("Services") .card-value'), '3');
    assert.equal(await text(page, '.card:has-text("Instances") .card-value'), '13');
    assert.match(await text(page, '.card:has-text("Instances") .card-sub'), /10 up · 0 down · 3 other/);
    await waitFor(async () => (await text(page, '.card:has-text("Nodes up") .card-value')) === '1 / 1', {what: 'nodes card'});
    await waitFor(async () => /all: \d/.test(await text(page, '.chart:has-text("Requests per second") .chart-legend')),
      {what: 'a request-rate sample', timeout: 15000});
    assert.match(await text(page, '.top-services'), /order-service 6 instances/);
    await screenshot(page, 'dashboard');
    await checkPage(page);
  });

  test('services lists every service with counts by status, and searches', async () => {
    const page = await open('/services');
    await page.locator('[role=grid][aria-label="Services"] .vt-row').first().waitFor();
    const rows = await rowsText(page, 'Services');
    assert.equal(rows.length, 3);
    assert.equal(rows[0], 'order-service6501zone-1, zone-2');
    await screenshot(page, 'services');
    await page.fill('#svc-search', 'PAY');
    await waitFor(async () => (await rowsText(page, 'Services')).length === 1, {what: 'filtered rows'});
    assert.match((await rowsText(page, 'Services'))[0], /^payment-service3/);
    await waitFor(() => page.url().includes('?q=PAY'), {what: 'search kept in the address'});
    await page.reload();
    await page.locator('[role=grid][aria-label="Services"] .vt-row').first().waitFor();
    assert.equal(await page.inputValue('#svc-search'), 'PAY');
    assert.equal((await rowsText(page, 'Services')).length, 1);
    await checkPage(page);
  });

  test('instances of a service: every field, metadata, lease age', async () => {
    const page = await open('/services/order-service');
    const grid = '[role=grid][aria-label="Instances of order-service"]';
    await page.locator(grid + ' .vt-row').first().waitFor();
    assert.equal((await rowsText(page, 'Instances of order-service')).length, 6);
    await waitFor(async () => /s ago/.test((await rowsText(page, 'Instances of order-service'))[0]), {what: 'lease age'});
    assert.match(await text(page, '.summary'), /6 of 6 instances shown · 5 up · 0 down · 1 other/);
    await page.locator(grid + ' .vt-row', {hasText: 'order-service-3'}).click();
    const panel = page.locator('section:has(h2:text("Instance order-service-3"))');
    await panel.waitFor();
    const detail = await panel.textContent();
    for (const s of ['zone-2', 'version', '1.3', 'team', 'core', 'http://10.1.0.1:8080/order-service-3', '10.2.3.4', 'lease renewed']) {
      assert.ok(detail.includes(s), 'detail shows ' + s);
    }
    await screenshot(page, 'instances');
    await page.selectOption('#inst-status', 'other');
    await waitFor(async () => (await rowsText(page, 'Instances of order-service')).length === 1, {what: 'status filter'});
    await checkPage(page);
  });

  test('unregister from the instances page removes the instance', async () => {
    await node.register([inst('doomed-service', 'doomed-1'), inst('doomed-service', 'doomed-2')]);
    const page = await open('/services/doomed-service');
    const grid = '[role=grid][aria-label="Instances of doomed-service"]';
    await page.locator(grid + ' .vt-row', {hasText: 'doomed-1'}).waitFor();
    await page.locator(grid + ' .vt-row', {hasText: 'doomed-1'}).locator('input[type=checkbox]').check();
    await page.getByRole('button', {name: 'Unregister (1)'}).click();
    await page.getByRole('dialog').getByRole('button', {name: 'Unregister'}).click();
    await waitFor(async () => (await rowsText(page, 'Instances of doomed-service')).length === 1, {what: 'row removed'});
    const d = await node.post('/artemis/api/discovery/service.json', {regionId: REGION, zoneId: 'zone-1',
      discoveryConfig: {serviceId: 'doomed-service', regionId: REGION}});
    assert.deepEqual(d.service.instances.map((i) => i.instanceId), ['doomed-2']);
    await checkPage(page);
  });

  test('cluster shows this node, the nodes and the bootstrap state', async () => {
    const page = await open('/cluster');
    await page.locator('section:has(h2:text("This node"))').waitFor();
    const self = await text(page, 'section:has(h2:text("This node"))');
    assert.match(self, /statusup/);
    assert.match(self, /not needed: no peers/);
    assert.ok(self.includes(node.base));
    await page.locator('[role=grid][aria-label="Nodes"] .vt-row').first().waitFor();
    assert.match((await rowsText(page, 'Nodes'))[0], /us-eastzone-1up/);
    assert.match(await text(page, '[role=grid][aria-label="Replication peers"] ~ .vt-empty'), /no replication peers/);
    await screenshot(page, 'cluster-alone');
    await checkPage(page);
  });
});

// Operations through the console, checked where they matter: in what
// discovery answers and in the node's own API.  The audit test at the end
// checks that the log shows every action the tests before it made.
describe('operations against the node', () => {
  const done = []; // [operationType, operation, targetId] of every action made

  test('instances: pull out several, discovery hides them, pull them back in', async () => {
    const page = await open('/services/payment-service');
    const grid = page.getByRole('grid', {name: 'Instances of payment-service'});
    await grid.locator('.vt-row').first().waitFor();
    await page.getByRole('button', {name: /^Pull out/}).waitFor();
    const all = await discovered('payment-service');
    assert.equal(all.length, 3);
    await grid.getByLabel('Select every row shown').check({force: true});
    await page.getByRole('button', {name: 'Pull out (3)'}).click();
    await page.getByRole('dialog').getByRole('button', {name: 'Pull out'}).click();
    await waitFor(async () => (await grid.locator('.vt-row', {hasText: 'pulled out'}).count()) === 3, {what: 'three pulled out'});
    assert.deepEqual(await discovered('payment-service'), [], 'discovery hides pulled-out instances');
    assert.match(await text(page, '.summary'), /3 of 3 instances shown · 0 up · 3 down/);
    await screenshot(page, 'instances-pulled-out');
    await grid.locator('.vt-row', {hasText: 'payment-service-0'}).click();
    await page.locator('section h2', {hasText: 'Instance payment-service-0'}).waitFor();
    await page.getByRole('button', {name: 'Pull in', exact: true}).click();
    await waitFor(async () => (await grid.locator('.vt-row', {hasText: 'pulled out'}).count()) === 2, {what: 'one back in'});
    assert.deepEqual(await discovered('payment-service'), ['payment-service-0']);
    await page.getByRole('button', {name: 'Close'}).click();
    await grid.getByLabel('Select every row shown').check({force: true});
    await page.getByRole('button', {name: 'Pull in (3)'}).click();
    await page.getByRole('dialog').getByRole('button', {name: 'Pull in'}).click();
    await waitFor(async () => (await grid.locator('.vt-row', {hasText: 'pulled out'}).count()) === 0, {what: 'all back in'});
    assert.deepEqual(await discovered('payment-service'), all);
    for (const id of ['payment-service-0', 'payment-service-1', 'payment-service-2']) {
      done.push(['instance', 'pullout', `${REGION}/payment-service/${id}`]);
    }
    await checkPage(page);
  });

  test('zones: a zone pulled out leaves discovery, and comes back', async () => {
    const page = await open('/zones');
    await page.locator('[aria-label="Zones in the registry"] .vt-row').first().waitFor();
    const all = await discovered('order-service');
    await page.getByRole('button', {name: 'Pull out a zone'}).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Zone *').fill('zone 2');
    await dlg.getByRole('button', {name: 'Pull out'}).click();
    await dlg.locator('.field-error', {hasText: 'Use letters, digits'}).waitFor();
    await dlg.getByLabel('Zone *').fill('zone-2');
    await dlg.getByRole('button', {name: 'Pull out'}).click();
    await page.locator('[aria-label="Zone operations"] .vt-row', {hasText: 'zone-2'}).waitFor();
    await page.locator('[aria-label="Zones in the registry"] .vt-row', {hasText: 'pulled out'}).waitFor();
    assert.deepEqual(await discovered('order-service'), ['order-service-0', 'order-service-2', 'order-service-4'],
      'only zone-1 is discovered');
    await screenshot(page, 'zones');
    await page.getByRole('button', {name: 'Pull in'}).click();
    await dlg.getByRole('button', {name: 'Pull in'}).click();
    await page.locator('[aria-label="Zone operations"] ~ .vt-empty:visible').waitFor();
    assert.deepEqual(await discovered('order-service'), all);
    done.push(['zone', 'pullout', `${REGION}/zone-2`]);
    await checkPage(page);
  });

  test('routing: groups, a duplicate, a rule with weights, publish, a tag and a member, unpublish', async () => {
    const page = await open('/routing?service=order-service');
    await page.locator('h1', {hasText: 'Routing'}).waitFor();
    const dlg = page.getByRole('dialog');
    // Checked before anything is sent (the page's own reads may still be
    // going: only writes of the routing API count).
    const writes = [];
    page.on('request', (r) => { if (r.method() !== 'GET' && r.url().includes('/api/routing/')) writes.push(r.url()); });
    await page.getByRole('button', {name: 'New group'}).click();
    await dlg.getByLabel('Name *').fill('bad name!');
    await dlg.getByRole('button', {name: 'Create group'}).click();
    await dlg.locator('.field-error', {hasText: 'Use letters, digits'}).waitFor();
    assert.deepEqual(writes, [], 'nothing sent before the form is valid');
    await dlg.getByRole('button', {name: 'Cancel'}).click();
    for (const name of ['blue', 'green']) {
      await page.getByRole('button', {name: 'New group'}).click();
      await dlg.getByLabel('Name *').fill(name);
      await dlg.getByRole('button', {name: 'Create group'}).click();
      await dlg.waitFor({state: 'detached'});
      await page.locator('[aria-label="Groups"] .vt-row', {hasText: name}).waitFor();
    }
    await page.getByRole('button', {name: 'New group'}).click();
    await dlg.getByLabel('Name *').fill('green');
    await dlg.getByRole('button', {name: 'Create group'}).click();
    await dlg.locator('.form-error', {hasText: 'exists'}).waitFor();
    await dlg.getByRole('button', {name: 'Cancel'}).click();

    await page.getByRole('button', {name: 'New rule'}).click();
    await dlg.getByLabel('Rule id *').fill('split-1');
    await dlg.getByLabel('Name *').fill('Blue/green split');
    await dlg.getByRole('button', {name: 'Create rule'}).click();
    await page.locator('section h2', {hasText: 'Rule split-1'}).waitFor();
    for (const [group, weight] of [['blue', '70'], ['green', '30']]) {
      await page.getByRole('button', {name: 'Add group'}).click();
      await dlg.getByLabel('Group').selectOption({label: group + ' (us-east/zone-1)'});
      await dlg.getByLabel('Weight (1–100) *').fill(weight);
      await dlg.getByRole('button', {name: 'Add group'}).click();
      await dlg.waitFor({state: 'detached'});
    }
    await page.locator('.split-text', {hasText: 'blue 70 % · green 30 %'}).waitFor();
    await page.getByLabel('green', {exact: true}).fill('130');
    await page.locator('.field-error', {hasText: 'from 1 to 100'}).waitFor();
    await page.getByLabel('green', {exact: true}).fill('70');
    await page.locator('.split-text', {hasText: 'blue 50 % · green 50 %'}).waitFor();
    await page.getByLabel('green', {exact: true}).fill('30');
    await page.locator('.split-text', {hasText: 'blue 70 % · green 30 %'}).waitFor();
    await page.getByRole('button', {name: 'Publish', exact: true}).click();
    await page.getByRole('button', {name: 'Unpublish', exact: true}).waitFor();
    await waitFor(async () => /published$/.test((await rowsText(page, 'Route rules'))[0] || ''),
      {what: 'rule published'});
    // Saved weights: green to 40.
    await page.getByLabel('green', {exact: true}).fill('40');
    await page.locator('li.weight-row', {hasText: 'green'}).getByRole('button', {name: 'Save'}).click();
    await waitFor(async () => {
      const r = await api('GET', '/api/routing/rules/split-1');
      return r.body.data.groups.map((g) => g.weight).join(',') === '70,40';
    }, {what: 'weight saved'});
    const r = (await api('GET', '/api/routing/rules/split-1')).body.data;
    assert.equal(r.status, 'active');
    assert.deepEqual(r.groups.map((g) => g.groupName), ['blue', 'green']);
    // A tag and a member on blue.
    await page.locator('[aria-label="Groups"] .vt-row', {hasText: 'blue'}).click();
    await page.locator('section h2', {hasText: 'Group blue'}).waitFor();
    await page.getByRole('button', {name: 'Add tag'}).click();
    await dlg.getByLabel('Key *').fill('color');
    await dlg.getByLabel('Value *').fill('blue');
    await dlg.getByRole('button', {name: 'Add tag'}).click();
    await page.locator('.chips', {hasText: 'color=blue'}).waitFor();
    await page.getByRole('button', {name: 'Add member'}).click();
    await dlg.getByLabel('Instance id *').fill('order-service-0');
    await dlg.getByRole('button', {name: 'Add member'}).click();
    await page.locator('.chips', {hasText: 'order-service-0'}).waitFor();
    // What a Java client now gets with the service.
    const d = await node.post('/artemis/api/discovery/service.json',
      {regionId: REGION, discoveryConfig: {serviceId: 'order-service', regionId: REGION}});
    const rule = d.service.routeRules[0];
    assert.equal(rule.routeId, 'Blue/green split');
    assert.deepEqual(rule.groups.map((g) => [g.weight, g.instanceIds, g.metadata]),
      [[70, ['order-service-0'], {color: 'blue'}], [40, [], null]]);
    await page.locator('section h2', {hasText: 'Rule split-1'}).scrollIntoViewIfNeeded();
    await screenshot(page, 'routing');
    // Unpublished: Java clients get no rule with the service any more.
    await page.getByRole('button', {name: 'Unpublish', exact: true}).click();
    await page.getByRole('button', {name: 'Publish', exact: true}).waitFor();
    assert.equal((await api('GET', '/api/routing/rules/split-1')).body.data.status, 'inactive');
    const after = await node.post('/artemis/api/discovery/service.json',
      {regionId: REGION, discoveryConfig: {serviceId: 'order-service', regionId: REGION}});
    assert.deepEqual(after.service.routeRules || [], []);
    done.push(['group', 'create', 'order-service/us-east/zone-1/blue'], ['route-rule', 'create', 'split-1'],
      ['route-rule', 'publish', 'split-1'], ['route-rule', 'unpublish', 'split-1']);
    await checkPage(page);
  });

  test('canary: a config with CIDR blocks, disabled and enabled', async () => {
    const page = await open('/canary');
    await page.getByRole('button', {name: 'New canary configuration'}).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Service *').fill('payment-service');
    await dlg.getByLabel(/Caller IPs/).fill('10.0.0.1\n300.1.1.1');
    await dlg.getByRole('button', {name: 'Create and enable'}).click();
    await dlg.locator('.field-error', {hasText: '300.1.1.1'}).waitFor();
    await dlg.getByLabel(/Caller IPs/).fill('10.0.0.1, 10.1.0.0/16\nfd00::/8');
    await dlg.getByRole('button', {name: 'Create and enable'}).click();
    await page.locator('section h2', {hasText: 'Canary of payment-service'}).waitFor();
    await page.locator('.vt-row', {hasText: 'enabled'}).waitFor();
    let c = (await api('GET', '/api/management/canary/config/payment-service')).body.data;
    assert.deepEqual(c.ipWhitelist, ['10.0.0.1', '10.1.0.0/16', 'fd00::/8']);
    await page.getByRole('button', {name: 'Disable'}).click();
    await page.locator('.vt-row', {hasText: 'disabled'}).waitFor();
    c = (await api('GET', '/api/management/canary/config/payment-service')).body.data;
    assert.equal(c.enabled, false);
    await page.locator('.vt-row', {hasText: 'payment-service'}).click();
    await page.getByRole('button', {name: 'Enable'}).click();
    await page.locator('.vt-row', {hasText: 'enabled'}).waitFor();
    await page.locator('.chips li', {hasText: '10.0.0.1'}).getByRole('button', {name: 'Remove'}).click();
    await waitFor(async () => (await api('GET', '/api/management/canary/payment-service/whitelist')).body.data.length === 2,
      {what: 'an address removed'});
    await screenshot(page, 'canary');
    done.push(['canary', 'put', 'payment-service']);
    await checkPage(page);
  });

  test('the audit log shows each action above, filters and pages', async () => {
    assert.ok(done.length >= 9, 'the tests above make the actions this checks (run the whole describe)');
    // Two pages' worth of records by olga, made through the API.
    const olga = await node.login('olga', 'operator-pass');
    for (let i = 0; i < 30; i++) {
      for (const op of ['pull-out', 'pull-in']) {
        const r = await node.api('POST', '/api/management/zone/' + op, {zoneId: 'audit-' + i, regionId: REGION, operatorId: 'olga'}, olga);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    }
    const page = await open('/audit');
    await page.locator('[aria-label="Audit records"] .vt-row').first().waitFor();
    assert.match(await text(page, '.pager'), /Page 1 · records 1–50/);
    assert.match((await rowsText(page, 'Audit records'))[0], /zonepulloutdeleteus-east\/audit-29olga/);
    await page.getByRole('button', {name: 'Next'}).click();
    await page.locator('.pager', {hasText: 'records 51–'}).waitFor();
    // Each action of the tests above, found by type and operator.
    for (const [type, operation, target] of done) {
      await page.goto(node.base + '/console/#/audit?' + new URLSearchParams({operationType: type, operatorId: 'admin', targetId: target}));
      await waitFor(async () => (await rowsText(page, 'Audit records')).some((r) => r.includes(operation) && r.includes(target)),
        {what: `the audit record of ${type} ${operation} ${target}`});
    }
    await page.goto(node.base + '/console/#/audit?operatorId=admin');
    await page.locator('[aria-label="Audit records"] .vt-row', {hasText: 'route-rule'}).first().waitFor();
    await screenshot(page, 'audit');
    // The form: olga's zone records, in the address, two pages of them.
    await page.goto(node.base + '/console/#/audit');
    await page.locator('[aria-label="Audit records"] .vt-row').first().waitFor();
    await page.selectOption('#au-type', 'zone');
    await page.fill('#au-operator', 'olga');
    await page.getByRole('button', {name: 'Filter'}).click();
    await page.locator('.pager', {hasText: 'Page 1 · records 1–50'}).waitFor();
    assert.ok(page.url().includes('operationType=zone') && page.url().includes('operatorId=olga'), page.url());
    for (const r of await rowsText(page, 'Audit records')) assert.match(r, /^.+zonepullout(insert|delete)us-east\/audit-\d+olga/);
    assert.equal(await page.getByRole('button', {name: 'Next'}).isDisabled(), false);
    await page.locator('[aria-label="Audit records"] .vt-row').first().click();
    await page.locator('section h2', {hasText: 'Record'}).waitFor();
    assert.match(await text(page, 'pre.json'), /"operatorId": "olga"/);
    await checkPage(page);
  });
});

describe('sign-in and roles against the node', () => {
  test('login, a wrong password, a revoked session returns to where the user was, logout', async () => {
    const page = await fresh();
    const seen = [];
    page.on('request', (r) => seen.push({url: r.url(), auth: r.headers().authorization || ''}));
    await page.goto(node.base + '/console/#/audit?operatorId=olga');
    await page.locator('h1', {hasText: 'Sign in to Artemis'}).waitFor();
    await screenshot(page, 'login');
    await login(page, 'admin', 'wrong');
    await page.locator('.form-error', {hasText: /invalid username or password/i}).waitFor();
    await login(page, 'admin', ADMIN_PASSWORD);
    await page.locator('h1', {hasText: 'Audit log'}).waitFor();
    assert.equal(await page.inputValue('#au-operator'), 'olga');
    const call = await waitFor(() => seen.find((c) => c.url.includes('/api/management/audit/logs')), {what: 'audit call'});
    assert.match(call.auth, /^Bearer ey/);
    assert.match(call.url, /operatorId=olga/);
    assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie');
    // The session ends on the node (a logout elsewhere): the next call is
    // 401 and the console asks for a login, then goes back where it was.
    const token = await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY);
    assert.equal((await node.api('POST', '/api/auth/logout', {}, token)).status, 200);
    await page.goto(node.base + '/console/#/zones');
    await page.locator('text=Your session has expired').waitFor();
    await login(page, 'admin', ADMIN_PASSWORD);
    await page.locator('h1', {hasText: 'Zones'}).waitFor();
    const second = await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY);
    await page.getByRole('button', {name: 'Sign out'}).click();
    await page.locator('#login-user').waitFor();
    assert.equal(await node.status('/api/auth/user', second), 401, 'the token is revoked by the logout');
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null, 'the token is forgotten');
    await checkPage(page);
  });

  test('a session running out goes to the login page and back to the same page', async () => {
    const page = await fresh();
    await page.clock.install();
    await page.goto(node.base + '/console/#/services/order-service?q=zone-2');
    await login(page, 'olga', 'operator-pass');
    const grid = page.getByRole('grid', {name: 'Instances of order-service'});
    await grid.locator('.vt-row').first().waitFor();
    const token = await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY);
    const exp = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).exp;
    // The console ends the session 60 s before the token's exp.
    await page.clock.fastForward(Math.max(0, (exp - 60) * 1000 - Date.now()) + 1000);
    await page.locator('text=Your session has expired').waitFor();
    assert.match(decodeURIComponent(page.url()), /#\/login\?next=\/services\/order-service\?q=zone-2/);
    await page.clock.setSystemTime(Date.now());
    await login(page, 'olga', 'operator-pass');
    await grid.locator('.vt-row').first().waitFor();
    assert.equal(await page.inputValue('#inst-search'), 'zone-2');
    assert.equal((await rowsText(page, 'Instances of order-service')).length, 3);
    await checkPage(page);
  });

  // Controls a viewer may have: reading, navigating, filtering.
  const READ_CONTROLS = new Set(['Menu', 'Password', 'Sign out', 'Close', 'Show', 'Check a zone', 'Filter', 'Previous', 'Next']);

  async function writeControls(page) {
    const names = await page.evaluate(() => [...document.querySelectorAll('#main button:not(.vt-sort), #main input[type=checkbox], .topbar button')]
      .filter((el) => el.offsetParent !== null).map((el) => el.getAttribute('aria-label') || el.textContent.trim()));
    return names.filter((n) => !READ_CONTROLS.has(n));
  }

  test('a viewer sees no write controls anywhere, and the node refuses its forged calls', async () => {
    // Something to look at on every page.
    const g = await api('POST', '/api/routing/groups', {serviceId: 'user-service', regionId: REGION, zoneId: 'zone-1',
      name: 'viewer-blue', groupType: 'physical'});
    assert.equal(g.status, 201, JSON.stringify(g.body));
    assert.equal((await api('POST', '/api/routing/rules', {routeId: 'viewer-rule', serviceId: 'user-service', name: 'Viewer rule',
      strategy: 'weighted-round-robin'})).status, 201);
    assert.equal((await api('POST', '/api/routing/rules/viewer-rule/groups', {groupId: g.body.data.groupId, weight: 10})).status, 201);
    assert.equal((await api('POST', '/api/management/canary/config', {serviceId: 'user-service', ipWhitelist: ['10.9.0.1']})).status, 201);

    const page = await fresh('/');
    await login(page, 'vera', 'viewer-pass');
    await page.locator('h1', {hasText: 'Dashboard'}).waitFor();
    assert.match(await text(page, '.topbar .who'), /vera \(viewer\)/);
    assert.equal(await page.locator('nav#nav a', {hasText: 'Users'}).count(), 0);
    const go = (hash) => page.evaluate((hsh) => { location.hash = hsh; }, hash);
    const seen = {};
    for (const [hash, ready, open] of [
      ['/', '.card-sub:has-text("up")'],
      ['/services', '[aria-label="Services"] .vt-row'],
      ['/services/user-service', '[aria-label="Instances of user-service"] .vt-row', 'user-service-0'],
      ['/cluster', '[aria-label="Nodes"] .vt-row'],
      ['/routing?service=user-service', '[aria-label="Groups"] .vt-row', 'viewer-blue'],
      ['/routing?service=user-service', '[aria-label="Route rules"] .vt-row', 'viewer-rule'],
      ['/zones', '[aria-label="Zones in the registry"] .vt-row'],
      ['/canary', '[aria-label="Canary configurations"] .vt-row', 'user-service'],
      ['/audit', '[aria-label="Audit records"] .vt-row'],
    ]) {
      await go(hash);
      await page.locator(ready).first().waitFor();
      if (open) {
        await page.locator(ready, {hasText: open}).first().click();
        await page.locator('section h2', {hasText: open}).waitFor();
      }
      if (hash.startsWith('/routing') && open === 'viewer-rule') {
        assert.equal(await page.locator('li.weight-row input').count(), 0, 'no weight inputs');
      }
      seen[hash + ' ' + (open || '')] = await writeControls(page);
    }
    for (const [where, v] of Object.entries(seen)) assert.deepEqual(v, [], 'write controls on ' + where);
    assert.equal(Object.keys(seen).length, 9);
    await go('/users');
    await page.locator('text=Only administrators see this page.').waitFor();

    // The same calls forged from the page with the viewer's own token.
    const forged = await page.evaluate(async ([k, region]) => {
      const t = sessionStorage.getItem(k);
      const calls = [
        ['POST', '/api/management/zone/pull-out', {zoneId: 'zone-1', regionId: region, operatorId: 'vera'}],
        ['POST', '/api/management/instance/operate-instance.json', {instanceKey: {regionId: region, serviceId: 'user-service',
          instanceId: 'user-service-0'}, operation: 'pullout', operatorId: 'vera'}],
        ['POST', '/api/routing/groups', {serviceId: 'user-service', regionId: region, zoneId: 'zone-1', name: 'forged'}],
        ['POST', '/api/routing/rules/viewer-rule/unpublish', {}],
        ['PUT', '/api/routing/rules/viewer-rule/groups/0', {weight: 99}],
        ['POST', '/api/management/canary/disable', {serviceId: 'user-service'}],
        ['DELETE', '/api/management/canary/config/user-service'],
        ['POST', '/api/auth/users', {username: 'mallory', password: 'mallory-pass', role: 'admin'}],
        ['GET', '/api/auth/users'],
      ];
      const out = [];
      for (const [method, path, body] of calls) {
        const res = await fetch(path, {method, headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + t},
          body: body ? JSON.stringify(body) : undefined});
        out.push(method + ' ' + path + ' ' + res.status);
      }
      return out;
    }, [TOKEN_KEY, REGION]);
    for (const f of forged) assert.match(f, / 403$/);
    assert.deepEqual(await discovered('user-service'), ['user-service-0', 'user-service-1', 'user-service-2', 'user-service-3']);
    assert.deepEqual((await api('GET', '/api/management/zone/operations')).body.data, []);
    assert.equal((await api('GET', '/api/management/canary/config/user-service')).body.data.enabled, true);
    assert.ok(!(await api('GET', '/api/auth/users')).body.data.some((u) => u.username === 'mallory'));
    await checkPage(page);
  });

  test('an operator may operate but not manage users', async () => {
    const page = await fresh('/services/user-service');
    await login(page, 'olga', 'operator-pass');
    await page.locator('[aria-label="Instances of user-service"] .vt-row').first().waitFor();
    await page.getByRole('button', {name: /^Pull out/}).waitFor();
    await page.getByRole('button', {name: /^Unregister/}).waitFor();
    assert.equal(await page.locator('nav#nav a', {hasText: 'Users'}).count(), 0);
    await page.evaluate(() => { location.hash = '/users'; });
    await page.locator('text=Only administrators see this page.').waitFor();
    const st = await page.evaluate(async (k) => (await fetch('/api/auth/users',
      {headers: {Authorization: 'Bearer ' + sessionStorage.getItem(k)}})).status, TOKEN_KEY);
    assert.equal(st, 403);
    await checkPage(page);
  });

  test('users and sessions: create a user, revoke a session', async () => {
    const olga = await node.login('olga', 'operator-pass');
    const page = await fresh('/users');
    await login(page, 'admin', ADMIN_PASSWORD);
    await page.locator('[aria-label="Users"] .vt-row', {hasText: 'olga'}).waitFor();
    await page.getByRole('button', {name: 'New user'}).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('User name *').fill('nina');
    await dlg.getByLabel('Password *', {exact: true}).fill('short');
    await dlg.getByLabel('Password again *').fill('different');
    await dlg.getByRole('button', {name: 'Create user'}).click();
    await dlg.locator('.field-error', {hasText: 'at least 8'}).waitFor();
    await dlg.locator('.field-error', {hasText: 'differ'}).waitFor();
    await dlg.getByLabel('Password *', {exact: true}).fill('long-enough-1');
    await dlg.getByLabel('Password again *').fill('long-enough-1');
    await dlg.getByLabel('Role').selectOption('operator');
    await dlg.getByRole('button', {name: 'Create user'}).click();
    await page.locator('[aria-label="Users"] .vt-row', {hasText: 'nina'}).waitFor();
    const users = (await api('GET', '/api/auth/users')).body.data;
    assert.equal(users.find((u) => u.username === 'nina').role, 'operator');
    await node.login('nina', 'long-enough-1'); // the password the form sent
    // The node's own message when it refuses: the name is taken.
    await page.getByRole('button', {name: 'New user'}).click();
    await dlg.getByLabel('User name *').fill('nina');
    await dlg.getByLabel('Password *', {exact: true}).fill('long-enough-2');
    await dlg.getByLabel('Password again *').fill('long-enough-2');
    await dlg.getByRole('button', {name: 'Create user'}).click();
    await dlg.locator('.form-error', {hasText: /exists|taken/i}).waitFor();
    await dlg.getByRole('button', {name: 'Cancel'}).click();
    const olgaRow = page.locator('[aria-label="Sessions"] .vt-row', {hasText: 'olga'});
    await olgaRow.first().waitFor();
    await screenshot(page, 'users');
    assert.equal(await node.status('/api/auth/user', olga), 200);
    await olgaRow.first().getByRole('button', {name: 'Revoke'}).click();
    await page.getByRole('dialog').getByRole('button', {name: 'Revoke'}).click();
    await waitFor(async () => (await node.status('/api/auth/user', olga)) === 401, {what: "olga's session revoked"});
    await checkPage(page);
  });

  test('a page on another origin cannot make the console\'s calls, even with a token (CSRF)', async () => {
    // http://localhost:PORT is another origin than http://127.0.0.1:PORT,
    // served by the same node.
    const page = await fresh();
    const other = node.base.replace('127.0.0.1', 'localhost');
    await page.goto(other + '/health');
    const pullOut = async (pg, url) => pg.evaluate(async ([u, t, region]) => {
      const res = await fetch(u + '/api/management/zone/pull-out', {method: 'POST', mode: 'cors',
        headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + t},
        body: JSON.stringify({zoneId: 'csrf-zone', regionId: region, operatorId: 'x'})});
      return [res.status, (await res.json()).message];
    }, [url, adminToken, REGION]);
    const [status, message] = await pullOut(page, node.base);
    assert.equal(status, 403, message);
    assert.match(message, /cross-origin/);
    assert.deepEqual((await api('GET', '/api/management/zone/operations')).body.data, []);
    // The console's own origin may.
    const own = await open('/zones');
    await own.locator('h1', {hasText: 'Zones'}).waitFor();
    assert.equal((await pullOut(own, node.base))[0], 200);
    assert.equal((await api('POST', '/api/management/zone/pull-in', {zoneId: 'csrf-zone', regionId: REGION, operatorId: 'x'})).status, 200);
  });
});

describe('live updates', () => {
  test('services and instances follow registrations from another process', async () => {
    const page = await open('/services');
    await page.locator('[role=grid][aria-label="Services"] .vt-row').first().waitFor();
    await page.evaluate(() => { window.__sameDocument = true; });
    await node.register([inst('live-service', 'live-1')]);
    await page.locator('.vt-row', {hasText: 'live-service'}).waitFor({timeout: 10000});
    await page.locator('.vt-row', {hasText: 'live-service'}).click();
    const grid = '[role=grid][aria-label="Instances of live-service"]';
    await page.locator(grid + ' .vt-row', {hasText: 'live-1'}).waitFor();
    await node.register([inst('live-service', 'live-2', {metadata: {added: 'later'}})]);
    await page.locator(grid + ' .vt-row', {hasText: 'live-2'}).waitFor({timeout: 10000});
    await node.unregister([inst('live-service', 'live-1')]);
    await waitFor(async () => {
      const rows = await rowsText(page, 'Instances of live-service');
      return rows.length === 1 && rows[0].includes('live-2');
    }, {what: 'live-1 gone'});
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
    assert.equal(await text(page, '.live'), 'Live');
    await checkPage(page);
  });

  test('the dashboard counts follow too', async () => {
    const page = await open('/');
    await waitFor(async () => /up/.test(await text(page, '.card:has-text("Instances") .card-sub')), {what: 'services loaded'});
    const before = Number((await text(page, '.card:has-text("Instances") .card-value')).replace(/\D/g, ''));
    await node.register([inst('live-dash', 'd-1'), inst('live-dash', 'd-2')]);
    await waitFor(async () => Number((await text(page, '.card:has-text("Instances") .card-value')).replace(/\D/g, '')) === before + 2,
      {what: 'instances card +2'});
    await checkPage(page);
  });
});

describe('hostile data', () => {
  test('markup and script in names, metadata and URLs stay text', async () => {
    const svc = 'xss<img src=x onerror="window.__xss=\'svc\'">';
    const id = '<script>window.__xss="id"</script>';
    await node.register([inst(svc, id, {
      zoneId: '<i>zone</i>', status: '<b onmouseover="window.__xss=1">up</b>', ip: '"><svg onload=window.__xss=2>',
      url: 'javascript:window.__xss="url"', healthCheckUrl: 'http://h/"><script>window.__xss="hc"</script>',
      machineName: '<iframe src="javascript:window.__xss=3"></iframe>',
      metadata: {'<b>key</b>': '<svg/onload="window.__xss=\'meta\'">', html: '"><img src=y onerror=window.__xss=4>'},
    })]);
    for (const hash of ['/', '/services', '/services/' + encodeURIComponent(svc)]) {
      const page = await open(hash);
      await page.locator('h1').first().waitFor();
      if (hash.startsWith('/services/')) {
        const row = page.locator('.vt-row').first();
        await row.waitFor();
        await row.click();
        await page.locator('section h2', {hasText: 'Instance <script>'}).waitFor();
        assert.equal(await page.locator('#main a[href^="javascript"]').count(), 0, 'no javascript: link');
        const detail = await page.locator('#main').textContent();
        for (const s of [id, '<svg/onload="window.__xss=\'meta\'">', '<b>key</b>', 'javascript:window.__xss="url"']) {
          assert.ok(detail.includes(s), 'shown as text: ' + s);
        }
        await screenshot(page, 'xss-instances');
      } else {
        await page.locator('#main', {hasText: 'xss<img'}).waitFor();
      }
      await page.mouse.move(300, 300);
      const found = await page.evaluate(() => ({
        xss: window.__xss,
        nodes: document.querySelectorAll('#main img, #main script, #main iframe, #main svg [onload], #main [onerror], #main b, #main i').length,
      }));
      assert.deepEqual(found, {xss: undefined, nodes: 0}, hash);
      await checkPage(page);
    }
  });

  test('markup in operators, descriptions and audit details stays text', async () => {
    const mark = '<img src=x onerror="window.__xss=\'op\'"><b>bold</b>';
    const z = await api('POST', '/api/management/zone/pull-out', {zoneId: 'xss-zone', regionId: REGION, operatorId: mark});
    assert.equal(z.status, 200, JSON.stringify(z.body));
    const g = await api('POST', '/api/routing/groups', {serviceId: 'user-service', regionId: REGION, zoneId: 'zone-1',
      name: 'xss-group', groupType: 'physical', description: mark, operatorId: mark});
    assert.equal(g.status, 201, JSON.stringify(g.body));
    try {
      for (const [hash, row, detail] of [
        ['/zones', '[aria-label="Zone operations"] .vt-row'],
        ['/audit?' + new URLSearchParams({operatorId: mark}), '[aria-label="Audit records"] .vt-row', 'Record'],
        ['/routing?service=user-service', '[aria-label="Groups"] .vt-row:has-text("xss-group")', 'Group xss-group'],
      ]) {
        const page = await open(hash);
        await page.locator(row).first().waitFor();
        if (detail) {
          await page.locator(row).first().click();
          await page.locator('section h2', {hasText: detail}).waitFor();
        }
        assert.ok((await page.locator('#main').textContent()).includes(mark), 'shown as text on ' + hash);
        await page.mouse.move(300, 300);
        const found = await page.evaluate(() => ({xss: window.__xss, nodes: document.querySelectorAll('#main img, #main b').length}));
        assert.deepEqual(found, {xss: undefined, nodes: 0}, hash);
        await checkPage(page);
      }
    } finally {
      await api('POST', '/api/management/zone/pull-in', {zoneId: 'xss-zone', regionId: REGION, operatorId: 'cleanup'});
      await api('DELETE', '/api/routing/groups/' + g.body.data.groupId);
    }
  });
});

describe('keyboard and screen readers', () => {
  test('skip link, navigation, search and the grid work from the keyboard', async () => {
    const page = await open('/');
    await page.locator('h1', {hasText: 'Dashboard'}).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'focus is visible');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
    let hops = 0;
    while (await page.evaluate(() => document.activeElement.textContent) !== 'Services' && hops++ < 15) {
      await page.keyboard.press('Shift+Tab');
    }
    assert.equal(await page.evaluate(() => document.activeElement.closest('nav')?.getAttribute('aria-label')), 'Main');
    await page.keyboard.press('Enter');
    await page.locator('h1', {hasText: 'Services'}).waitFor();
    await waitFor(() => page.evaluate(() => document.activeElement.tagName === 'H1'), {what: 'focus on the new heading'});
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'svc-search');
    await page.keyboard.type('user');
    await waitFor(async () => (await rowsText(page, 'Services')).length === 1, {what: 'search by keyboard'});
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'grid');
    const activeRow = await page.evaluate(() => document.activeElement.getAttribute('aria-activedescendant'));
    assert.ok(activeRow, 'the grid names its active row');
    await page.keyboard.press('Enter');
    await page.locator('h1', {hasText: 'user-service'}).waitFor();
    const grid = page.getByRole('grid', {name: 'Instances of user-service'});
    await grid.locator('.vt-row').first().waitFor();
    await grid.focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Space');
    assert.equal(await grid.locator('.vt-row[aria-selected=true]').count(), 1);
    await page.keyboard.press('Enter');
    await page.locator('section h2', {hasText: 'Instance user-service-1'}).waitFor();
    await checkPage(page);
  });
});

describe('layout', () => {
  test('a phone-sized screen gets a menu button; the dark theme follows the system', async () => {
    const page = await open('/services', {viewport: {width: 390, height: 844}, colorScheme: 'dark', isMobile: true});
    await page.locator('[role=grid][aria-label="Services"] .vt-row').first().waitFor();
    assert.equal(await page.locator('nav#nav').isVisible(), false);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(15, 18, 23)', 'dark background');
    await screenshot(page, 'phone-services-dark');
    await page.getByRole('button', {name: 'Menu'}).click();
    assert.equal(await page.locator('nav#nav').isVisible(), true);
    await page.locator('nav#nav a', {hasText: 'Cluster'}).click();
    await page.locator('h1', {hasText: 'Cluster'}).waitFor();
    assert.equal(await page.locator('nav#nav').isVisible(), false);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, 'no sideways scrolling of the page: ' + overflow);
    await checkPage(page);
  });
});

describe('a cluster of two nodes', () => {
  test('cluster shows both nodes and the peer: state, lag, acknowledged version', async () => {
    const [pa, pb, ca, cb] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const key = 'browser-test-cluster-key-0123456789';
    const peer = (p, c) => `browser-${p} zone-1 http://127.0.0.1:${p} 127.0.0.1:${c}`;
    const [a, b] = await Promise.all([
      Node.start({port: pa, clusterPort: ca, cluster: {key, peer: peer(pb, cb)}}),
      Node.start({port: pb, clusterPort: cb, cluster: {key, peer: peer(pa, ca)}}),
    ]);
    try {
      await b.register([inst('replicated-service', 'r-1')]);
      const page = await newPage(browser);
      pages.push(page);
      await page.context().addInitScript(([k, t]) => sessionStorage.setItem(k, t), [TOKEN_KEY, await a.login()]);
      await page.goto(a.base + '/console/#/cluster');
      const peers = '[role=grid][aria-label="Replication peers"] .vt-row';
      await waitFor(async () => {
        const rows = await page.locator(peers).allTextContents();
        return rows.length === 1 && /^browser-\d+http:\/\/127\.0\.0\.1:\d+up\d+ ms[1-9]/.test(rows[0]);
      }, {what: 'the peer up, its lag and acknowledged version'});
      assert.ok((await page.locator(peers).first().textContent()).startsWith('browser-' + pb));
      assert.equal((await rowsText(page, 'Nodes')).length, 2);
      assert.match(await text(page, 'section:has(h2:text("This node"))'), /bootstrapcomplete/);
      await screenshot(page, 'cluster');
      // What the peer registered is here too.
      await page.evaluate(() => { location.hash = '/services'; });
      await page.locator('.vt-row', {hasText: 'replicated-service'}).waitFor();
      await checkPage(page);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe('a registry of a few hundred services', () => {
  test('services are paged and searched by the node; the page shows its answer', async () => {
    const N = 250;
    const many = [];
    for (let i = 0; i < N; i++) {
      const id = 'paged-svc-' + String(i).padStart(3, '0');
      many.push(inst(id, id + '-a'));
      if (i % 10 === 0) many.push(inst(id, id + '-b', {status: 'starting', zoneId: 'zone-2'}));
    }
    await node.register(many);
    try {
      const page = await newPage(browser);
      pages.push(page);
      const asked = [];
      page.on('request', (r) => asked.push(new URL(r.url()).pathname));
      await page.context().addInitScript(([k, t]) => sessionStorage.setItem(k, t), [TOKEN_KEY, adminToken]);
      await page.goto(node.base + '/console/#/services?q=paged-svc');
      const first = () => text(page, '[role=grid][aria-label="Services"] .vt-row');
      await waitFor(async () => (await first()).startsWith('paged-svc-000'), {what: 'the first page'});
      const server = (await api('GET', '/api/management/services?q=paged-svc&limit=100')).body.data;
      assert.equal(server.total, N);
      assert.equal(await first(), 'paged-svc-000' + '2' + '1' + '0' + '1' + 'zone-1, zone-2');
      assert.match(await text(page, '#svc-page'), /^Page 1 of 3 · services 1–100$/);
      assert.match(await text(page, '.summary'), new RegExp(`^${N} of \\d+ services match, ${N + 25} instances$`));
      await page.getByRole('button', {name: 'Next'}).click();
      await waitFor(async () => (await first()).startsWith('paged-svc-100'), {what: 'the second page'});
      assert.match(await text(page, '#svc-page'), /^Page 2 of 3 · services 101–200$/);
      await waitFor(() => page.url().includes('page=2'), {what: 'the page kept in the address'});
      await page.reload();
      await waitFor(async () => (await first()).startsWith('paged-svc-100'), {what: 'the second page after a reload'});
      // The search goes to the node and starts again from page 1.
      await page.fill('#svc-search', 'SVC-24');
      await waitFor(async () => /^10 of \d+ services match/.test(await text(page, '.summary')), {what: 'the search answered'});
      const rows = await rowsText(page, 'Services');
      assert.deepEqual(rows.map((r) => r.slice(0, 13)), Array.from({length: 10}, (_, i) => 'paged-svc-24' + i));
      assert.match(await text(page, '#svc-page'), /^Page 1 of 1 · services 1–10$/);
      await waitFor(() => page.url().includes('?q=SVC-24') && !page.url().includes('page='), {what: 'q in the address'});
      assert.ok(!asked.includes('/api/management/services.json'), 'the services page loaded every instance');
      assert.ok(asked.includes('/api/management/services'));
      await checkPage(page);
    } finally {
      await node.unregister(many);
    }
  });
});
