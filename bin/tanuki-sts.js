#!/usr/bin/env node
// Entry point of the `tanuki-sts` binary. It loads the TypeScript sources
// through tsx so that `npx tanuki-sts` works straight after `npm ci` (no build
// step) and `npm i -g tanuki-sts` ships one artefact. `npm run build` emits the
// same code as plain JS under dist/ for those who prefer `node dist/cli/main.js`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
