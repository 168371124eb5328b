import { clusterBackend } from '../helpers/backends.js';
import { fillLeaseSuite } from '../integration/suites/fill-lease-suite.js';

fillLeaseSuite(clusterBackend());
