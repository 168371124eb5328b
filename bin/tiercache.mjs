#!/usr/bin/env node
const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv);
