import { afterAll, describe } from 'vitest';
import { clusterBackend, sharedBackend } from '../helpers/backends.js';
import { ioredis6, iovalkey } from '../helpers/client-libraries.js';
import { busSuite } from '../integration/suites/bus-suite.js';
import { redisTierConformance } from '../integration/suites/tier-conformance.js';

// The Cluster clients of the other ioredis-family packages, on one shared cluster: the tier
// conformance suite (per-slot scripts, pipelines per master, SCAN on every master) and the bus
// on sharded pub/sub (a connection per master, a duplicate of one of the Cluster's nodes).
// ioredis 5 runs these in bus and conformance.cluster.test.ts.
const shared = sharedBackend(clusterBackend());
afterAll(() => shared.stopAll());

describe('iovalkey Cluster', () => {
  describe('conformance', () => redisTierConformance(shared.as(iovalkey)));
  describe('bus', () => busSuite(shared.as(iovalkey)));
});

describe('ioredis 6 Cluster', () => {
  describe('bus', () => busSuite(shared.as(ioredis6)));
});
