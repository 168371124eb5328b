import { iovalkey } from '../helpers/client-libraries.js';
import { clientSuite } from './suites/client-suite.js';

// The suites every supported client runs (suites/client-suite.ts), with iovalkey clients.
clientSuite(iovalkey);
