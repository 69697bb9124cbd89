// The Node GPU's choice of lavapipe compute threads (src/gpu/node.ts, lavapipeThreads): a pure policy, checked
// here for each case; its effect on speed is measured with `bench` (README).
import { afterEach, describe, expect, it } from 'vitest';
import { lavapipeThreads, SMALL_MODEL_BYTES } from '../../src/gpu/node.ts';

describe('lavapipe thread count', () => {
  const saved = process.env.LP_NUM_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.LP_NUM_THREADS;
    else process.env.LP_NUM_THREADS = saved;
  });

  it('runs dispatches on the submitting thread for small models or on machines with at most 2 CPUs', () => {
    delete process.env.LP_NUM_THREADS;
    expect(lavapipeThreads(1 << 20, 16)).toBe(0);
    expect(lavapipeThreads(SMALL_MODEL_BYTES - 1, 16)).toBe(0);
    expect(lavapipeThreads(4e9, 2)).toBe(0);
    expect(lavapipeThreads(undefined, 1)).toBe(0);
  });

  it("keeps Mesa's default for large or unknown models on bigger machines", () => {
    delete process.env.LP_NUM_THREADS;
    expect(lavapipeThreads(SMALL_MODEL_BYTES, 16)).toBeUndefined();
    expect(lavapipeThreads(4e9, 8)).toBeUndefined();
    expect(lavapipeThreads(undefined, 8)).toBeUndefined();
  });

  it('never overrides LP_NUM_THREADS from the environment', () => {
    process.env.LP_NUM_THREADS = '3';
    expect(lavapipeThreads(1 << 20, 2)).toBeUndefined();
  });
});
