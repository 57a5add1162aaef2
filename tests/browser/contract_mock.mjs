// contract_mock.mjs - the management and routing API as the contract
// (MANAGEMENT.md §3.2, the Rust surface) describes it, in memory, answered
// inside the browser through Playwright's request routing.
//
// The console's pages for endpoints the node does not serve yet (routing,
// canary) are exercised against this stand-in so that their calls (paths,
// bodies, answers, status codes) are checked now.  Requests it does not
// know go on to the real node.  Every call is recorded in `calls` for the
// tests to assert on.
//
// Who is calling is the real node's business: with `node` given, /api/auth
// goes to the node (logins, users, sessions are real) and the mock asks the
// node who a bearer token belongs to (GET /api/auth/user), so a revoked or
// expired token is refused here as the node refuses it.  Without a node the
// mock plays a node with [auth] enabled = off: everyone is "anonymous",
// an admin, and the calls it lets through to the real node carry `token`
// (an admin's) so that the node's own management API answers them too.

const ok = (data, status = 200) => ({status, json: {success: true, data}});
const fail = (status, message) => ({status, json: {success: false, message}});
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

export class ContractMock {
  constructor({node = null, token = null, region = 'us-east'} = {}) {
    this.node = node;
    this.passToken = token;
    this.auth = !!node;
    this.region = region;
    this.calls = [];
    this.now = () => Math.floor(Date.now() / 1000);
    this.groups = [];
    this.rules = [];
    this.ruleGroups = [];
    this.zoneOps = [];
    this.canary = new Map();
    this.audit = [];
    this.instanceOps = [];
    this.serverOps = [];
    this.members = [];
    this.nextId = 100;
    this.routes = this.table();
  }

  record(type, targetId, operation, operatorId, details = {}) {
    this.audit.unshift({logId: ++this.nextId, operationType: type, targetId, operation, operatorId,
      operationTime: this.now(), details});
  }

  // The caller as the node knows it, or null (no valid token).
  async who(req) {
    if (!this.auth) return {userId: 0, username: 'anonymous', role: 'admin'};
    if (!req.headers.authorization) return null;
    const res = await fetch(this.node.base + '/api/auth/user', {headers: {Authorization: req.headers.authorization}});
    return res.status === 200 ? (await res.json()).data : null;
  }

  table() {
    const R = [];
    const on = (method, re, fn, need = 'read') => R.push({method, re, fn, need});
    const groupById = (id) => this.groups.find((g) => String(g.groupId) === String(id));
    const ruleById = (id) => this.rules.find((r) => r.routeId === id);

    // A node with [auth] enabled = off answers who is calling without a token.
    if (!this.auth) on('GET', /^\/api\/auth\/user$/, (q, m, b, u) => ok(u));

    on('GET', /^\/api\/management\/all-instance-operations\.json$/, () => ({status: 200, json: {
      responseStatus: {status: 'success', errorCode: 'success', message: ''}, status: {errorCode: 'success'},
      allInstanceOperations: this.instanceOps.map((o) => ({instanceKey: o.instanceKey, operations: [o.operation]})),
      instanceOperationRecords: this.instanceOps}}));
    on('GET', /^\/api\/management\/all-server-operations\.json$/, () => ({status: 200, json: {
      responseStatus: {status: 'success', errorCode: 'success', message: ''}, status: {errorCode: 'success'},
      allServerOperations: [], serverOperationRecords: this.serverOps}}));
    on('POST', /^\/api\/management\/instance\/operate-instance\.json$/, (q, m, b) => {
      const k = b.instanceKey || {};
      if (!k.instanceId || !b.operation || !b.operatorId) return {status: 200, json: {status: {errorCode: 'bad-request', errorMessage: 'missing field'}}};
      const same = (o) => o.instanceKey.instanceId === k.instanceId && o.instanceKey.serviceId === k.serviceId;
      this.instanceOps = this.instanceOps.filter((o) => !same(o));
      if (b.operation === 'pullout') this.instanceOps.push({instanceKey: k, operation: 'pullout', operationComplete: false, operatorId: b.operatorId});
      this.record('instance', k.serviceId + '/' + k.instanceId, b.operation, b.operatorId);
      return {status: 200, json: {status: {errorCode: 'success'}}};
    }, 'write');

    on('GET', /^\/api\/management\/zone\/operations$/, () => ok(this.zoneOps));
    on('POST', /^\/api\/management\/zone\/pull-out$/, (q, m, b) => {
      if (!b.zoneId || !b.regionId) return fail(400, 'zoneId and regionId are required');
      this.zoneOps.push({zoneId: b.zoneId, regionId: b.regionId, serviceId: b.serviceId || '', operation: 'pullout',
        operatorId: b.operatorId, operationTime: this.now()});
      this.record('zone', b.zoneId, 'pullout', b.operatorId);
      return ok('Zone ' + b.zoneId + ' pulled out');
    }, 'write');
    on('POST', /^\/api\/management\/zone\/pull-in$/, (q, m, b) => {
      this.zoneOps = this.zoneOps.filter((o) => !(o.zoneId === b.zoneId && o.serviceId === (b.serviceId || '')));
      this.record('zone', b.zoneId, 'pullin', b.operatorId);
      return ok('Zone ' + b.zoneId + ' pulled in');
    }, 'write');
    on('GET', /^\/api\/management\/zone\/status\/([^/]+)\/([^/]+)$/, (q, m) => {
      const op = this.zoneOps.find((o) => o.zoneId === decodeURIComponent(m[1]));
      return ok({zoneId: decodeURIComponent(m[1]), regionId: decodeURIComponent(m[2]), isDown: !!op,
        operation: op ? op.operation : null, operatorId: op ? op.operatorId : null});
    });

    on('GET', /^\/api\/routing\/groups$/, (q) => ok(this.groups.filter((g) => !q.query.serviceId || g.serviceId === q.query.serviceId)));
    on('POST', /^\/api\/routing\/groups$/, (q, m, b) => {
      for (const f of ['serviceId', 'regionId', 'zoneId', 'name']) if (!b[f]) return fail(400, f + ' is required');
      if (this.groups.some((g) => g.serviceId === b.serviceId && g.name === b.name && g.zoneId === b.zoneId)) {
        return fail(409, 'Group ' + b.name + ' exists');
      }
      const g = {groupId: ++this.nextId, groupKey: [b.serviceId, b.regionId, b.zoneId, b.name].join(':'), serviceId: b.serviceId,
        regionId: b.regionId, zoneId: b.zoneId, name: b.name, appId: b.appId || '', groupType: b.groupType || 'physical',
        status: 'active', description: b.description || '', tags: {}, metadata: {}, createdAt: this.now(), updatedAt: this.now()};
      this.groups.push(g);
      this.record('group', g.groupKey, 'create', b.operatorId);
      return ok(g, 201);
    }, 'write');
    on('PUT', /^\/api\/routing\/groups\/(\d+)$/, (q, m, b) => {
      const g = groupById(m[1]);
      if (!g) return fail(404, 'No group ' + m[1]);
      Object.assign(g, {description: b.description ?? g.description, status: b.status ?? g.status});
      return ok(g);
    }, 'write');
    on('DELETE', /^\/api\/routing\/groups\/(\d+)$/, (q, m) => {
      this.groups = this.groups.filter((g) => String(g.groupId) !== m[1]);
      return ok('deleted');
    }, 'write');
    on('GET', /^\/api\/routing\/groups\/(\d+)\/tags$/, (q, m) => ok(Object.entries((groupById(m[1]) || {tags: {}}).tags)
      .map(([key, value]) => ({key, value}))));
    on('POST', /^\/api\/routing\/groups\/(\d+)\/tags$/, (q, m, b) => {
      const g = groupById(m[1]);
      for (const t of b.tags || []) g.tags[t.key] = t.value;
      return ok(g.tags, 201);
    }, 'write');
    on('GET', /^\/api\/routing\/groups\/(\d+)\/instances$/, (q, m) => ok(this.members.filter((x) => String(x.groupId) === m[1])));
    on('POST', /^\/api\/routing\/groups\/(\d+)\/instances$/, (q, m, b) => {
      if (!b.instanceId) return fail(400, 'instanceId is required');
      this.members.push({groupId: Number(m[1]), instanceId: b.instanceId, regionId: b.regionId, zoneId: b.zoneId, serviceId: b.serviceId});
      return ok('bound', 201);
    }, 'write');

    on('GET', /^\/api\/routing\/rules$/, (q) => ok(this.rules.filter((r) => !q.query.serviceId || r.serviceId === q.query.serviceId)
      .map((r) => ({...r, status: r.status, strategy: r.strategy}))));
    on('POST', /^\/api\/routing\/rules$/, (q, m, b) => {
      for (const f of ['routeId', 'serviceId', 'name']) if (!b[f]) return fail(400, f + ' is required');
      if (ruleById(b.routeId)) return fail(409, 'Rule ' + b.routeId + ' exists');
      const r = {routeRuleId: ++this.nextId, routeId: b.routeId, serviceId: b.serviceId, name: b.name, description: b.description || '',
        status: 'inactive', strategy: b.strategy || 'weighted-round-robin', groups: [], createdAt: this.now(), updatedAt: this.now()};
      this.rules.push(r);
      this.record('route', r.routeId, 'create', b.operatorId);
      return ok(r, 201);
    }, 'write');
    on('POST', /^\/api\/routing\/rules\/([^/]+)\/(publish|unpublish)$/, (q, m) => {
      const r = ruleById(decodeURIComponent(m[1]));
      if (!r) return fail(404, 'No rule');
      r.status = m[2] === 'publish' ? 'active' : 'inactive';
      this.record('route', r.routeId, m[2], 'console');
      return ok(r);
    }, 'write');
    on('GET', /^\/api\/routing\/rules\/([^/]+)\/groups$/, (q, m) => ok(this.ruleGroups.filter((x) => x.routeId === decodeURIComponent(m[1]))));
    on('POST', /^\/api\/routing\/rules\/([^/]+)\/groups$/, (q, m, b) => {
      const r = ruleById(decodeURIComponent(m[1]));
      const g = groupById(b.groupId);
      if (!r || !g) return fail(404, 'No such rule or group');
      const weight = Math.max(1, Math.min(100, Number(b.weight)));
      this.ruleGroups.push({routeRuleId: r.routeRuleId, routeId: r.routeId, groupId: g.groupId, groupKey: g.groupKey, weight,
        unreleasable: false, regionId: g.regionId, zoneId: g.zoneId});
      return ok(this.ruleGroups[this.ruleGroups.length - 1], 201);
    }, 'write');
    on('PUT', /^\/api\/routing\/rules\/([^/]+)\/groups\/(\d+)$/, (q, m, b) => {
      const x = this.ruleGroups.find((y) => y.routeId === decodeURIComponent(m[1]) && String(y.groupId) === m[2]);
      if (!x) return fail(404, 'Not in the rule');
      x.weight = Math.max(1, Math.min(100, Number(b.weight)));
      return ok(x);
    }, 'write');

    on('GET', /^\/api\/management\/canary\/configs$/, () => ok([...this.canary.values()]));
    on('POST', /^\/api\/management\/canary\/config$/, (q, m, b) => {
      if (!b.serviceId) return fail(400, 'serviceId is required');
      const c = {serviceId: b.serviceId, ipWhitelist: b.ipWhitelist || [], enabled: true, createdAt: this.now(), updatedAt: this.now()};
      this.canary.set(b.serviceId, c);
      this.record('canary', b.serviceId, 'create', b.operatorId);
      return ok(c, 201);
    }, 'write');
    on('POST', /^\/api\/management\/canary\/(enable|disable)$/, (q, m, b) => {
      const c = this.canary.get(b.serviceId);
      if (!c) return fail(404, 'No canary for ' + b.serviceId);
      c.enabled = m[1] === 'enable';
      return ok(c);
    }, 'write');

    on('GET', /^\/api\/management\/audit\/logs$/, (q) => {
      const f = q.query;
      let rows = this.audit.filter((l) => (!f.operationType || l.operationType === f.operationType)
        && (!f.operatorId || l.operatorId === f.operatorId));
      const offset = Number(f.offset || 0);
      rows = rows.slice(offset, offset + Number(f.limit || 50));
      return ok(rows);
    });
    return R;
  }

  async handle(req) {
    const url = new URL(req.url);
    const route = this.routes.find((r) => r.method === req.method && r.re.test(url.pathname));
    if (!route) return null;
    let body = {};
    try {
      body = req.body ? JSON.parse(req.body) : {};
    } catch {
      return fail(400, 'malformed JSON');
    }
    const q = {headers: req.headers, query: Object.fromEntries(url.searchParams)};
    this.calls.push({method: req.method, path: url.pathname, query: q.query, body, auth: req.headers.authorization || ''});
    const user = await this.who(req);
    if (route.need !== 'public' && this.auth) {
      if (!user) return fail(401, 'Authentication required');
      if (route.need === 'write' && user.role === 'viewer') return fail(403, 'Role viewer may not do this');
      if (route.need === 'admin' && user.role !== 'admin') return fail(403, 'Administrators only');
    }
    return route.fn(q, route.re.exec(url.pathname), body, user);
  }

  // Answer the contract's paths inside the browser context; let the rest
  // reach the node.
  async install(context) {
    await context.route(/\/api\/(auth|management|routing)\//, async (route) => {
      const r = route.request();
      const out = await this.handle({method: r.method(), url: r.url(), headers: r.headers(), body: r.postData()});
      if (!out) {
        const headers = r.headers();
        if (this.passToken && !headers.authorization) headers.authorization = 'Bearer ' + this.passToken;
        await route.fallback({headers});
        return;
      }
      await route.fulfill({status: out.status, contentType: 'application/json', body: JSON.stringify(out.json)});
    });
  }
}
