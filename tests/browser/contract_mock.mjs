// contract_mock.mjs - the management, routing and auth API as the contract
// (MANAGEMENT.md §3.2, the Rust surface) describes it, in memory, answered
// inside the browser through Playwright's request routing.
//
// The node under test does not serve these endpoints yet; the console's
// pages for them are exercised against this stand-in so that their calls
// (paths, bodies, answers, status codes) are checked now.  Requests it
// does not know go on to the real node.  Every call is recorded in
// `calls` for the tests to assert on.

const ok = (data, status = 200) => ({status, json: {success: true, data}});
const fail = (status, message) => ({status, json: {success: false, message}});
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

export class ContractMock {
  constructor({auth = true, region = 'us-east'} = {}) {
    this.auth = auth;
    this.region = region;
    this.calls = [];
    this.now = () => Math.floor(Date.now() / 1000);
    this.users = [
      {userId: 1, username: 'admin', role: 'admin', status: 'active', email: 'admin@example.com', password: 'admin-pass'},
      {userId: 2, username: 'olga', role: 'operator', status: 'active', email: '', password: 'operator-pass'},
      {userId: 3, username: 'vera', role: 'viewer', status: 'active', email: '', password: 'viewer-pass'},
    ].map((u) => ({...u, description: '', createdAt: this.now() - 86400, updatedAt: this.now() - 86400}));
    this.tokens = new Map(); // token -> {userId, sessionId, revoked}
    this.sessions = [];
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

  token(user, ttl = 3600) {
    const sessionId = 's' + (++this.nextId);
    const t = b64({alg: 'HS256', typ: 'JWT'}) + '.' + b64({sub: String(user.userId), username: user.username,
      role: user.role, sid: sessionId, iat: this.now(), exp: this.now() + ttl}) + '.sig' + this.nextId;
    this.tokens.set(t, {userId: user.userId, sessionId, revoked: false});
    this.sessions.push({sessionId, userId: user.userId, ipAddress: '127.0.0.1', userAgent: 'Chromium (test)',
      createdAt: this.now(), expiresAt: this.now() + ttl, lastActivity: this.now()});
    return t;
  }

  // Every token stops working (a node restart with a new secret, say).
  expireAll() {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  record(type, targetId, operation, operatorId, details = {}) {
    this.audit.unshift({logId: ++this.nextId, operationType: type, targetId, operation, operatorId,
      operationTime: this.now(), details});
  }

  who(req) {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization || '');
    const t = m && this.tokens.get(m[1]);
    if (!t || t.revoked) return null;
    return this.users.find((u) => u.userId === t.userId) || null;
  }

  table() {
    const R = [];
    const on = (method, re, fn, need = 'read') => R.push({method, re, fn, need});
    const groupById = (id) => this.groups.find((g) => String(g.groupId) === String(id));
    const ruleById = (id) => this.rules.find((r) => r.routeId === id);

    on('POST', /^\/api\/auth\/login$/, (q, m, b) => {
      const u = this.users.find((x) => x.username === b.username && x.password === b.password && x.status === 'active');
      if (!u) return fail(401, 'Invalid username or password');
      return ok({accessToken: this.token(u), tokenType: 'Bearer', expiresIn: 3600});
    }, 'public');
    on('GET', /^\/api\/auth\/user$/, (q, m, b, u) => ok(this.pub(u)));
    on('POST', /^\/api\/auth\/logout$/, (q) => {
      const t = this.tokens.get(q.headers.authorization.slice(7));
      if (t) t.revoked = true;
      return ok('logged out');
    });
    on('POST', /^\/api\/auth\/password\/change$/, (q, m, b, u) => {
      if (b.oldPassword !== u.password) return fail(400, 'The current password is wrong');
      u.password = b.newPassword;
      return ok('changed');
    });
    on('GET', /^\/api\/auth\/users$/, () => ok(this.users.map((u) => this.pub(u))), 'admin');
    on('POST', /^\/api\/auth\/users$/, (q, m, b) => {
      if (!b.username || !b.password) return fail(400, 'username and password are required');
      if (this.users.some((u) => u.username === b.username)) return fail(409, 'User ' + b.username + ' exists');
      const u = {userId: ++this.nextId, username: b.username, role: b.role || 'viewer', status: 'active', email: b.email || '',
        description: b.description || '', password: b.password, createdAt: this.now(), updatedAt: this.now()};
      this.users.push(u);
      this.record('user', String(u.userId), 'create', 'admin');
      return ok(this.pub(u), 201);
    }, 'admin');
    on('PUT', /^\/api\/auth\/users\/(\d+)$/, (q, m, b) => {
      const u = this.users.find((x) => String(x.userId) === m[1]);
      if (!u) return fail(404, 'No user ' + m[1]);
      Object.assign(u, {role: b.role ?? u.role, email: b.email ?? u.email, description: b.description ?? u.description});
      return ok(this.pub(u));
    }, 'admin');
    on('GET', /^\/api\/auth\/users\/(\d+)\/login-history$/, () => ok([{time: this.now() - 60, ipAddress: '127.0.0.1', success: true}]), 'admin');
    on('GET', /^\/api\/auth\/sessions$/, () => ok(this.sessions), 'admin');
    on('DELETE', /^\/api\/auth\/sessions\/([^/]+)$/, (q, m) => {
      this.sessions = this.sessions.filter((s) => s.sessionId !== m[1]);
      return ok('revoked');
    }, 'admin');

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

  pub(u) {
    const {password, ...rest} = u;
    return rest;
  }

  handle(req) {
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
    const user = this.auth ? this.who(req) : {userId: 0, username: 'anonymous', role: 'admin'};
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
      const out = this.handle({method: r.method(), url: r.url(), headers: r.headers(), body: r.postData()});
      if (!out) {
        await route.fallback();
        return;
      }
      await route.fulfill({status: out.status, contentType: 'application/json', body: JSON.stringify(out.json)});
    });
  }
}
