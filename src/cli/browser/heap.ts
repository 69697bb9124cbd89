/**
 * JavaScript memory of a page and of its workers, read through the DevTools protocol: for each context, V8's heap
 * in use plus the backing stores of its ArrayBuffers (where shard bytes live), from Runtime.getHeapUsage.
 *
 * Workers are reached through the page's session with Target.setAutoAttach (non-flattened: each worker's protocol
 * messages travel inside Target.sendMessageToTarget / Target.receivedMessageFromTarget), so dedicated workers
 * started by the page are measured from their first moment.
 */
import type { CDPSession, Page } from 'playwright-core';

interface HeapUsage {
  usedSize: number;
  totalSize: number;
  backingStorageSize?: number;
}

/** Bytes a context holds: V8 heap in use plus ArrayBuffer backing stores. */
const heldBytes = (u: HeapUsage) => u.usedSize + (u.backingStorageSize ?? 0);

export interface HeapPeak {
  /** Largest sum over the page and its workers at one sampling moment. */
  peakBytes: number;
  samples: number;
}

export class HeapMonitor {
  private readonly workers = new Map<string, { url: string; type: string }>();
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; session: string }>();
  private nextId = 1;
  private sampling: { stop: boolean; done: Promise<HeapPeak> } | null = null;

  private constructor(private readonly session: CDPSession) {
    session.on('Target.attachedToTarget', (e) => {
      if (e.targetInfo.type === 'worker' || e.targetInfo.type === 'shared_worker') this.workers.set(e.sessionId, { url: e.targetInfo.url, type: e.targetInfo.type });
    });
    session.on('Target.detachedFromTarget', (e) => {
      if (!e.sessionId) return;
      this.workers.delete(e.sessionId);
      for (const [id, w] of this.waiting) {
        if (w.session === e.sessionId) {
          this.waiting.delete(id);
          w.resolve(null);
        }
      }
    });
    session.on('Target.receivedMessageFromTarget', (e) => {
      const m = JSON.parse(e.message) as { id?: number; result?: unknown; error?: { message: string } };
      const w = m.id === undefined ? undefined : this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id!);
      if (m.error) w.reject(new Error(`DevTools protocol error in a worker: ${m.error.message}`));
      else w.resolve(m.result);
    });
  }

  static async attach(page: Page): Promise<HeapMonitor> {
    const session = await page.context().newCDPSession(page);
    const monitor = new HeapMonitor(session);
    await session.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
    return monitor;
  }

  /** Session ids of the workers attached now, with their script URLs. */
  workerTargets(): { sessionId: string; url: string }[] {
    return [...this.workers].map(([sessionId, w]) => ({ sessionId, url: w.url }));
  }

  /** Sends a protocol command to a worker; resolves null when the worker goes away first. */
  private toWorker<T>(sessionId: string, method: string, params: object = {}): Promise<T | null> {
    const id = this.nextId++;
    return new Promise<T | null>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, session: sessionId });
      this.session.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params }) }).catch(() => {
        this.waiting.delete(id);
        resolve(null);
      });
    });
  }

  /** Evaluates an expression in a worker and returns its value (null when the worker has gone). */
  async evaluateInWorker<T>(sessionId: string, expression: string): Promise<T | null> {
    const r = await this.toWorker<{ result: { value?: T } }>(sessionId, 'Runtime.evaluate', { expression, returnByValue: true });
    return r ? (r.result.value ?? null) : null;
  }

  /** Waits until a worker whose script URL contains `urlPart` is attached; returns its session id. */
  async waitForWorker(urlPart: string, timeoutMs = 30_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const w = this.workerTargets().find((t) => t.url.includes(urlPart));
      if (w) return w.sessionId;
      if (Date.now() > until) throw new Error(`no worker with "${urlPart}" in its URL attached within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Full garbage collection in the page and every worker. */
  async collectGarbage(): Promise<void> {
    await Promise.all([
      this.session.send('HeapProfiler.collectGarbage'),
      ...[...this.workers.keys()].map((s) => this.toWorker(s, 'HeapProfiler.collectGarbage')),
    ]);
  }

  /** Bytes held now by the page and each worker, and their sum. */
  async usage(): Promise<{ totalBytes: number; pageBytes: number; workerBytes: number[] }> {
    const [page, ...workers] = await Promise.all([
      this.session.send('Runtime.getHeapUsage') as Promise<HeapUsage>,
      ...[...this.workers.keys()].map((s) => this.toWorker<HeapUsage>(s, 'Runtime.getHeapUsage')),
    ]);
    const workerBytes = workers.filter((w): w is HeapUsage => w !== null).map(heldBytes);
    const pageBytes = heldBytes(page);
    return { totalBytes: workerBytes.reduce((a, b) => a + b, pageBytes), pageBytes, workerBytes };
  }

  /** Samples usage() back to back, `intervalMs` apart, until stop(). */
  start(intervalMs = 10): void {
    if (this.sampling) throw new Error('heap sampling is already running');
    const state = { stop: false, done: null as unknown as Promise<HeapPeak> };
    state.done = (async () => {
      let peakBytes = 0;
      let samples = 0;
      while (!state.stop) {
        const u = await this.usage();
        peakBytes = Math.max(peakBytes, u.totalBytes);
        samples++;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
      return { peakBytes, samples };
    })();
    this.sampling = state;
  }

  /** Ends sampling (after one last sample) and returns the peak. */
  async stop(): Promise<HeapPeak> {
    const s = this.sampling;
    if (!s) throw new Error('heap sampling is not running');
    s.stop = true;
    this.sampling = null;
    const peak = await s.done;
    const last = await this.usage();
    return { peakBytes: Math.max(peak.peakBytes, last.totalBytes), samples: peak.samples + 1 };
  }

  async detach(): Promise<void> {
    await this.session.detach().catch(() => {});
  }
}
