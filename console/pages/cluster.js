// cluster.js - the nodes of the cluster, this node's peers and how far
// behind they are, and whether this node finished its bootstrap.
//
// Calls, every POLL_MS:
//   GET /api/status/cluster.json (else /artemis/api/status/cluster.json)
//   GET /artemis/api/status/node.json
//   GET /metrics                        artemis_peer_up, _acked_version, _lag_seconds
//   GET /artemis/api/status/config.json [cluster] settings and configured peers
//   GET /artemis/api/status/websocket/connection.json
// /ws events cluster.node_added / cluster.node_removed refresh at once.

import {h, replace, safeLink} from '../lib/dom.js';
import {call} from '../lib/api.js';
import * as live from '../lib/live.js';
import * as metrics from '../lib/metrics.js';
import {vtable} from '../lib/table.js';
import {pageHeader, notice, errorText, badge, details, section, fmtInt} from '../lib/ui.js';
import {fetchCluster} from '../lib/registry.js';

const POLL_MS = 5000;

function yesNo(v) {
  return v === true ? 'yes' : v === false ? 'no' : '–';
}

export default {
  title: 'Cluster',
  render(main) {
    const messages = h('div');
    const self = h('div');
    const nodesTable = vtable({
      label: 'Nodes', rowKey: (r) => r.url, sortKey: 'url', minWidth: '50rem', emptyText: 'No nodes reported.',
      columns: [
        {key: 'url', title: 'Node', width: 'minmax(14rem, 2fr)', render: (r) => safeLink(r.url)},
        {key: 'regionId', title: 'Region', width: 'minmax(7rem, 1fr)'},
        {key: 'zoneId', title: 'Zone', width: 'minmax(7rem, 1fr)'},
        {key: 'status', title: 'Status', width: 'minmax(6rem, 1fr)', render: (r) => badge(r.status)},
        {key: 'registry', title: 'Registry', width: 'minmax(6rem, 1fr)'},
        {key: 'discovery', title: 'Discovery', width: 'minmax(6rem, 1fr)'},
      ],
    });
    const peersTable = vtable({
      label: 'Replication peers', rowKey: (r) => r.name, sortKey: 'name', minWidth: '50rem',
      emptyText: 'This node has no replication peers.',
      columns: [
        {key: 'name', title: 'Peer', width: 'minmax(10rem, 1.5fr)'},
        {key: 'url', title: 'Address', width: 'minmax(12rem, 2fr)', render: (r) => safeLink(r.url)},
        {key: 'state', title: 'State', width: 'minmax(6rem, 1fr)', render: (r) => badge(r.state)},
        {key: 'lag', title: 'Lag', width: 'minmax(6rem, 1fr)', className: 'num',
          render: (r) => (Number.isFinite(r.lag) ? (r.lag * 1000).toFixed(0) + ' ms' : '–')},
        {key: 'acked', title: 'Acked version', width: 'minmax(8rem, 1fr)', className: 'num', render: (r) => fmtInt(r.acked)},
      ],
    });
    main.append(pageHeader('Cluster'), messages, self,
      section('Nodes', nodesTable.el), section('Replication peers', peersTable.el));

    async function poll() {
      const errs = [];
      const grab = async (fn) => {
        try {
          return await fn();
        } catch (e) {
          if (!(e.body && e.body.responseStatus && e.body.responseStatus.errorCode === 'rate-limited')) errs.push(e);
          return null;
        }
      };
      const [cl, nd, mx, cfg, ws] = await Promise.all([
        grab(fetchCluster),
        grab(() => call('GET', '/artemis/api/status/node.json')),
        grab(() => call('GET', '/metrics')),
        grab(() => call('GET', '/artemis/api/status/config.json')),
        grab(() => call('GET', '/artemis/api/status/websocket/connection.json')),
      ]);
      replace(messages, errs.map((e) => notice('error', errorText(e))));
      if (cl) {
        nodesTable.setRows((cl.nodesStatus || []).map((n) => {
          const z = (n.node && n.node.zone) || {};
          return {url: (n.node && n.node.url) || n.url || '', regionId: z.regionId || n.regionId || '',
            zoneId: z.zoneId || n.zoneId || '', status: n.status || 'unknown',
            registry: yesNo(n.canServiceRegistry), discovery: yesNo(n.canServiceDiscovery)};
        }));
      }
      const props = (cfg && cfg.properties) || {};
      const configured = new Map();
      for (const [k, v] of Object.entries(props)) {
        if (!k.startsWith('cluster.peer.')) continue;
        const [name, zone, url] = String(v).split(/\s+/);
        configured.set(name, {zone, url});
      }
      const mxParsed = mx ? metrics.parse(mx) : new Map();
      const peers = new Map();
      for (const r of mxParsed.get('artemis_peer_up') || []) {
        peers.set(r.labels.peer, {name: r.labels.peer, state: r.labels.state, url: '', lag: NaN, acked: NaN});
      }
      for (const r of mxParsed.get('artemis_peer_lag_seconds') || []) if (peers.has(r.labels.peer)) peers.get(r.labels.peer).lag = r.value;
      for (const r of mxParsed.get('artemis_peer_acked_version') || []) if (peers.has(r.labels.peer)) peers.get(r.labels.peer).acked = r.value;
      for (const [name, c] of configured) {
        if (!peers.has(name)) peers.set(name, {name, state: 'unknown', url: c.url, lag: NaN, acked: NaN});
        else peers.get(name).url = c.url;
      }
      peersTable.setRows([...peers.values()]);
      if (nd) {
        const ns = nd.nodeStatus || {};
        const z = (ns.node && ns.node.zone) || {};
        const up = ns.status === 'up';
        replace(self, section('This node', details([
          ['address', safeLink((ns.node && ns.node.url) || '')],
          ['region / zone', (z.regionId || '–') + ' / ' + (z.zoneId || '–')],
          ['status', badge(ns.status || 'unknown')],
          ['bootstrap', up ? (configured.size ? 'complete: holds a peer snapshot or waited out the timeout' : 'not needed: no peers')
            : 'waiting for a snapshot from a peer (up to [cluster] bootstrap_timeout_ms = ' + (props['cluster.bootstrap_timeout_ms'] || '?') + ' ms)'],
          ['registry version', fmtInt(metrics.value(mxParsed, 'artemis_registry_version'))],
          ['instances', fmtInt(metrics.value(mxParsed, 'artemis_instances'))],
          ['WebSocket sessions', ws ? `registry ${ws.registry}, discovery ${ws.discovery}` : '–'],
          ['anti-entropy every', props['cluster.digest_interval_ms'] ? props['cluster.digest_interval_ms'] + ' ms' : '–'],
        ])));
      }
    }

    const off = live.subscribe((msg) => {
      if (msg.kind === 'event' && /^cluster\./.test(msg.event)) poll();
    });
    const timer = setInterval(poll, POLL_MS);
    poll();
    return () => {
      off();
      clearInterval(timer);
    };
  },
};
