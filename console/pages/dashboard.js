// dashboard.js - the node at a glance, refreshed every few seconds.
//
// Figures: services and instances by status (the registry model, live),
// nodes up (GET /artemis/api/status/cluster.json every 10 s), WebSocket
// sessions and the registry version (/metrics).  Charts over the last ten
// minutes from the /metrics sampler: requests per second, latency (mean
// and p99 from the histogram), instances, registrations per second.

import {h, replace} from '../lib/dom.js';
import * as metrics from '../lib/metrics.js';
import * as registry from '../lib/registry.js';
import {lineChart} from '../lib/chart.js';
import {pageHeader, notice, errorText, fmtInt, section} from '../lib/ui.js';
import {href} from '../lib/router.js';

const CLUSTER_MS = 10000;

function card(label, value, sub) {
  return h('div', {class: 'card'}, h('p', {class: 'card-label'}, label), h('p', {class: 'card-value'}, value),
    sub ? h('p', {class: 'card-sub'}, sub) : null);
}

export default {
  title: 'Dashboard',
  render(main) {
    const cards = h('div', {class: 'cards', 'aria-live': 'off'});
    const status = h('div');
    const charts = {
      req: lineChart({title: 'Requests per second', unit: '/s', series: [{name: 'all'}, {name: 'errors', className: 'bad'}]}),
      lat: lineChart({title: 'Latency', unit: 'ms', series: [{name: 'mean'}, {name: 'p99', className: 's1'}]}),
      inst: lineChart({title: 'Instances', series: [{name: 'registered'}]}),
      reg: lineChart({title: 'Registry writes', unit: '/s', series: [{name: 'registers'}, {name: 'heartbeats', className: 's1'}]}),
    };
    const top = h('ol', {class: 'top-services'});
    main.append(pageHeader('Dashboard'), status, cards,
      h('div', {class: 'charts'}, charts.req.el, charts.lat.el, charts.inst.el, charts.reg.el),
      section('Largest services', top));

    let model = null;
    let clusterInfo = null;
    let clusterErr = null;

    function renderCards() {
      const s = metrics.latest();
      let up = 0;
      let down = 0;
      let other = 0;
      let total = 0;
      const sizes = [];
      if (model && model.loaded) {
        for (const [id, m] of model.services) {
          const c = registry.countService(m.values());
          up += c.up; down += c.down; other += c.other; total += c.total;
          sizes.push([id, c.total]);
        }
      }
      const nodes = clusterInfo ? clusterInfo.nodesStatus || [] : [];
      const nodesUp = nodes.filter((n) => n.status === 'up').length;
      replace(cards,
        card('Services', fmtInt(model && model.loaded ? model.services.size : s ? s.services : NaN)),
        card('Instances', fmtInt(model && model.loaded ? total : s ? s.instances : NaN),
          model && model.loaded ? `${fmtInt(up)} up · ${fmtInt(down)} down · ${fmtInt(other)} other` : 'loading…'),
        card('Nodes up', clusterInfo ? `${nodesUp} / ${nodes.length}` : clusterErr ? '?' : '…',
          clusterErr ? errorText(clusterErr) : nodes.length > nodesUp ? `${nodes.length - nodesUp} not up` : 'all up'),
        card('WebSocket sessions', fmtInt(s ? s.wsSessions : NaN)),
        card('Registry version', fmtInt(s ? s.version : NaN)));
      sizes.sort((a, b) => b[1] - a[1]);
      replace(top, sizes.slice(0, 10).map(([id, n]) => h('li', null,
        h('a', {href: href('/services/' + encodeURIComponent(id))}, id), ' ', h('span', {class: 'muted'}, fmtInt(n) + ' instances'))));
      if (!sizes.length) top.append(h('li', {class: 'muted'}, model && model.loaded ? 'No services registered.' : 'Loading…'));
    }

    function renderCharts() {
      const ser = metrics.series();
      charts.req.update(ser.map((d) => ({t: d.t, values: [d.reqRate, d.errRate]})));
      charts.lat.update(ser.map((d) => ({t: d.t, values: [d.avgMs, d.p99Ms]})));
      charts.inst.update(ser.map((d) => ({t: d.t, values: [d.instances]})));
      charts.reg.update(ser.map((d) => ({t: d.t, values: [d.regRate, d.renewRate]})));
      const err = metrics.error();
      replace(status, err ? notice('error', 'Reading /metrics failed: ' + errorText(err)) : null,
        model && model.error ? notice('error', 'Reading the services failed: ' + errorText(model.error)) : null);
    }

    async function pollCluster() {
      try {
        clusterInfo = await registry.fetchCluster();
        clusterErr = null;
      } catch (e) {
        if (e.body && e.body.responseStatus && e.body.responseStatus.errorCode === 'rate-limited') return;
        clusterErr = e;
      }
      renderCards();
    }

    const offSample = metrics.onSample(() => { renderCards(); renderCharts(); });
    const offModel = registry.watch((m) => { model = m; renderCards(); renderCharts(); });
    const timer = setInterval(pollCluster, CLUSTER_MS);
    pollCluster();
    renderCards();
    renderCharts();
    return () => {
      offSample();
      offModel();
      clearInterval(timer);
    };
  },
};
