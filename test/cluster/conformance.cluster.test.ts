import { describe } from 'vitest';
import { clusterBackend } from '../helpers/backends.js';
import { redisTierConformance } from '../integration/suites/tier-conformance.js';

describe('Redis Cluster', () => {
  redisTierConformance(clusterBackend());
});
