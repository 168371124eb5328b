/**
 * `tiercache/testing`: what people who write tiers test them with. Runner-agnostic: the suite
 * registers its tests through the `describe`/`it` it is given and asserts with node:assert.
 */
export { remoteTierConformance } from './conformance.js';
export type { RemoteTierConformanceOptions, TestRegistrar, TierContext } from './conformance.js';
