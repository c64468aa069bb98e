// Open a run's report.html and a compare.html in headless Chromium (Playwright drives Debian's
// chromium; nothing is downloaded by the browser), check that every chart is drawn, is not
// empty and carries the numbers of metrics.json / compare.json, and take screenshots.
//   node check.mjs RUN_DIR COMPARE_DIR SHOTS_DIR
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [runDir, compareDir, shots] = process.argv.slice(2).map((p) => path.resolve(p));
const fail = (msg) => {
  console.error(`browser check failed: ${msg}`);
  process.exit(1);
};
const close = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1240, height: 900 } });
// Nothing may be fetched: count every request beyond the page itself.
const fetched = [];
page.on('request', (r) => {
  if (!r.url().startsWith('file://')) fetched.push(r.url());
});

async function charts() {
  return page.$$eval('svg.chart', (els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      const marks = e.querySelectorAll('circle.point, rect.bar, polyline.series');
      const drawn = [...marks].filter((m) => {
        const b = m.getBoundingClientRect();
        return b.width > 0 || b.height > 0;
      }).length;
      return {
        id: e.id,
        width: r.width,
        height: r.height,
        drawn,
        values: [...e.querySelectorAll('[data-value]')].map((x) => Number(x.getAttribute('data-value'))),
      };
    }),
  );
}

// The run report.
await page.goto(`file://${runDir}/report.html`);
const metrics = JSON.parse(fs.readFileSync(`${runDir}/metrics.json`, 'utf8'));
const report = await charts();
const byId = Object.fromEntries(report.map((c) => [c.id, c]));
const stages = metrics.test.map((s) => s.name);
const want = ['loss', 'auc-cumulative', 'auc-conditional', 'funnel'];
for (const s of metrics.test) {
  want.push(`reliability-${s.name}-cumulative`);
  if (s.parent) want.push(`reliability-${s.name}-conditional`);
}
for (const id of want) {
  const c = byId[id];
  if (!c) fail(`report: no chart ${id} (charts: ${Object.keys(byId)})`);
  if (!(c.width > 100 && c.height > 100)) fail(`report: chart ${id} is ${c.width}x${c.height}`);
  if (c.drawn === 0) fail(`report: chart ${id} has no visible marks`);
}
for (const s of metrics.test) {
  // The reliability points are the bins' observed rates, in order.
  const rates = s.cumulative.calibration.bins.map((b) => b.rate);
  const got = byId[`reliability-${s.name}-cumulative`].values;
  if (got.length !== rates.length || !got.every((v, i) => close(v, rates[i])))
    fail(`report: reliability of ${s.name} shows ${got}, metrics.json has ${rates}`);
}
// The funnel's actual bars are the rows reaching each stage.
const reached = metrics.test.map((s) => s.cumulative.positives);
const bars = byId.funnel.values.filter((_, i) => i % 2 === 0);
if (!bars.every((v, i) => v === reached[i])) fail(`report: funnel bars ${bars} vs ${reached}`);
// The test AUC printed in the metrics table is metrics.json's.
const cells = await page.$$eval('#metrics-table td', (tds) => tds.map((t) => t.textContent));
const last = metrics.test[metrics.test.length - 1];
const auc = last.conditional.auc.toFixed(4);
if (!cells.includes(auc)) fail(`report: test AUC ${auc} of ${last.name} not in the metrics table`);
fs.mkdirSync(shots, { recursive: true });
await page.screenshot({ path: `${shots}/report.png`, fullPage: true });
console.log(`report: ${report.length} charts drawn (${stages.join(', ')}); test AUC ${auc} shown`);

// The compare page.
await page.goto(`file://${compareDir}/compare.html`);
const cmp = JSON.parse(fs.readFileSync(`${compareDir}/compare.json`, 'utf8'));
const cc = await charts();
if (cc.length !== cmp.metrics.length) fail(`compare: ${cc.length} charts for ${cmp.metrics.length} metrics`);
cmp.metrics.forEach((m, j) => {
  const c = cc.find((x) => x.id === `chart-${m.id}`);
  if (!c || c.drawn === 0) fail(`compare: chart of ${m.id} missing or empty`);
  const means = cmp.pipelines.map((p) => p.summary[j].mean);
  if (!c.values.every((v, i) => close(v, means[i]))) fail(`compare: ${m.id} bars ${c.values} vs means ${means}`);
});
const rows = await page.$$eval('#means tr', (trs) => trs.length);
if (rows !== cmp.pipelines.length + 1) fail(`compare: the means table has ${rows - 1} rows`);
await page.screenshot({ path: `${shots}/compare.png`, fullPage: true });
console.log(`compare: ${cc.length} charts and ${rows - 1} pipelines shown; means equal compare.json`);
if (fetched.length) fail(`pages fetched ${fetched}`);
await browser.close();
