import { singleBackend } from '../helpers/backends.js';
import { fillLeaseSuite } from './suites/fill-lease-suite.js';

fillLeaseSuite(singleBackend());
