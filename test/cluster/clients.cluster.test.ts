import { afterAll, describe } from 'vitest';
import { clusterBackend, sharedBackend } from '../helpers/backends.js';
import { ioredis6, iovalkey, nodeRedis5, nodeRedis6 } from '../helpers/client-libraries.js';
import { busSuite } from '../integration/suites/bus-suite.js';
import { coreSuite } from '../integration/suites/core-suite.js';
import { redisTierConformance } from '../integration/suites/tier-conformance.js';

// The Cluster clients of every other supported package, on one shared cluster (ioredis 5 runs
// these suites in core, bus and conformance.cluster.test.ts).
const shared = sharedBackend(clusterBackend());
afterAll(() => shared.stopAll());

// node-redis's Cluster goes through its own adapter (node-redis-cluster.ts): per-slot scripts
// and pipelines per master, SCAN on every master's client, and sharded pub/sub on connections
// duplicated from a master's client.
describe('node-redis Cluster', () => {
  describe('core', () => coreSuite(shared.as(nodeRedis5)));
  // One conformance variant: each clears a cluster's 16,384 generation keys many times.
  describe('conformance', () => redisTierConformance(shared.as(nodeRedis5), ['json']));
  describe('bus', () => busSuite(shared.as(nodeRedis5)));
});

describe('node-redis 6 Cluster', () => {
  describe('bus', () => busSuite(shared.as(nodeRedis6)));
});

// The ioredis-family Clusters are used as they are; what is theirs alone is the sharded bus's
// connection per master, a duplicate of one of the Cluster's own nodes. (The conformance suite
// on an iovalkey Cluster is how its auto-pipelining of scripts was found: docs/clients.md.)
describe('iovalkey Cluster', () => {
  describe('bus', () => busSuite(shared.as(iovalkey)));
});

describe('ioredis 6 Cluster', () => {
  describe('bus', () => busSuite(shared.as(ioredis6)));
});
