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

  it('runs dispatches on the queue thread for small models only', () => {
    delete process.env.LP_NUM_THREADS;
    expect(lavapipeThreads(1 << 20)).toBe(0);
    expect(lavapipeThreads(SMALL_MODEL_BYTES - 1)).toBe(0);
    expect(lavapipeThreads(SMALL_MODEL_BYTES)).toBeUndefined();
    expect(lavapipeThreads(4e9)).toBeUndefined();
    expect(lavapipeThreads(undefined)).toBeUndefined();
  });

  it('never overrides LP_NUM_THREADS from the environment', () => {
    process.env.LP_NUM_THREADS = '3';
    expect(lavapipeThreads(1 << 20)).toBeUndefined();
  });
});
