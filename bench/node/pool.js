// SPDX-License-Identifier: MIT
// Competitor: the same APIG requests sent with the official Huawei Cloud
// Node.js SDK core (@huaweicloud/huaweicloud-sdk-core: BasicCredentials,
// its AK/SK signer and its axios-based HcClient) through a promise pool.
//
//   node pool.js REQUESTS.json ENDPOINT PROJECT_ID AK_FILE SK_FILE [POOL]
//
// REQUESTS.json: {"stages": [[{"m": "GET", "p": "/v2/...", "q": {...},
// "b": {...} | null}, ...], ...]}. Stages run one after the other (a
// write's confirmation cannot start before the write); inside a stage at
// most POOL (256) requests are in flight. The test CA is trusted through
// NODE_EXTRA_CA_CERTS. Prints one JSON line: status counts per stage.
'use strict';
const fs = require('fs');
const https = require('https');
const { ClientBuilder } = require('@huaweicloud/huaweicloud-sdk-core/ClientBuilder');
const { BasicCredentials } = require('@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials');

const [file, endpoint, project, akFile, skFile, poolArg] = process.argv.slice(2);
const pool = Number(poolArg || 256);
const read = (f) => fs.readFileSync(f, 'utf8').replace(/\r?\n$/, '');
const cred = new BasicCredentials().withAk(read(akFile)).withSk(read(skFile))
  .withProjectId(project);
// Keep-alive with as many sockets as the pool: what a user tuning for
// throughput would set (Node's default agent also keeps connections alive).
const agent = new https.Agent({ keepAlive: true, maxSockets: pool });
let connects = 0; // TLS connections opened (handshakes)
const createConnection = agent.createConnection.bind(agent);
agent.createConnection = (...a) => { connects++; return createConnection(...a); };
const client = new ClientBuilder((hc) => hc)
  .withCredential(cred).withEndpoint(endpoint)
  .withOptions({ axiosRequestConfig: { httpsAgent: agent } }).build();

async function one(r) {
  const opts = { method: r.m, url: r.p, pathParams: {}, queryParams: r.q || {},
                 headers: {} };
  if (r.b) {
    opts.data = r.b;
    opts.contentType = 'application/json';
  }
  try {
    const res = await client.sendRequest(opts);
    return String(res.httpStatusCode);
  } catch (e) {
    return String(e.httpStatusCode || e.status || 0);
  }
}

async function stage(reqs) {
  const counts = {};
  let next = 0;
  async function worker() {
    while (next < reqs.length) {
      const s = await one(reqs[next++]);
      counts[s] = (counts[s] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: Math.min(pool, reqs.length) }, worker));
  return counts;
}

(async () => {
  const { stages } = JSON.parse(fs.readFileSync(file, 'utf8'));
  const out = [];
  for (const s of stages) out.push(await stage(s));
  console.log(JSON.stringify({ stages: out, connects }));
  agent.destroy();
})().catch((e) => { console.error(e.message); process.exit(1); });
