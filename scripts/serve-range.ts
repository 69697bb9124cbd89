/**
 * A Range-answering static server in a process of its own, for benchmarks (scripts/bench-import.ts): the server's
 * work then runs beside, not inside, the process that converts. Prints its URL, serves until killed.
 *   node scripts/run.mjs scripts/serve-range.ts <folder>
 */
import { startRangeServer } from '../test/helpers/range-server.ts';

const server = await startRangeServer({ '/files/': process.argv[2] });
console.log(server.url);
await new Promise(() => undefined); // until killed
