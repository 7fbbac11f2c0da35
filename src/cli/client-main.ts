/**
 * Entry of the self-contained pipeline client, `dist/tanuki-sts-client.mjs`
 * (served as `/client/tanuki-sts.mjs`): `node tanuki-sts.mjs token …`.
 * Exit codes and error lines as `tanuki-sts` (program.ts).
 */
import { buildClientProgram } from './client-program.ts';
import { runProgram } from './program.ts';

await runProgram(buildClientProgram(), process.argv);
