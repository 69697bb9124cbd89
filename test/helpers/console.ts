/** What a CLI command prints, collected for a test file's assertions. */
import { afterEach, beforeEach, vi } from 'vitest';

/**
 * Collects console.log into `stdout` and console.error into `stderr` (with `writes`, process.stdout.write and
 * process.stderr.write too), emptied before each test of the file and restored after it.
 */
export function captureOutput(writes: { stdout?: boolean; stderr?: boolean } = {}): { stdout: string[]; stderr: string[] } {
  const out = { stdout: [] as string[], stderr: [] as string[] };
  beforeEach(() => {
    out.stdout.length = 0;
    out.stderr.length = 0;
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.stdout.push(a.map(String).join(' ')));
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void out.stderr.push(a.map(String).join(' ')));
    if (writes.stdout) vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.stdout.push(String(s)), true));
    if (writes.stderr) vi.spyOn(process.stderr, 'write').mockImplementation((s) => (out.stderr.push(String(s)), true));
  });
  afterEach(() => vi.restoreAllMocks());
  return out;
}
