import { clusterBackend } from '../helpers/backends.js';
import { coreSuite } from '../integration/suites/core-suite.js';

coreSuite(clusterBackend());
