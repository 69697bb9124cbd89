/**
 * Progress lines on stderr for long CLI runs, so a run of minutes never looks hung. On a terminal each update
 * rewrites one line; elsewhere (logs, pipes) updates become lines, at most one per `minIntervalMs` unless forced.
 */
export class Progress {
  private lastAt = -Infinity;
  private open = false;

  constructor(
    private readonly enabled = true,
    private readonly minIntervalMs = 1000,
    private readonly tty = Boolean(process.stderr.isTTY),
  ) {}

  /** Shows `text`; `force` shows it even when the previous update was under minIntervalMs ago (phase changes). */
  update(text: string, force = false): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (!force && now - this.lastAt < (this.tty ? 100 : this.minIntervalMs)) return;
    this.lastAt = now;
    if (this.tty) {
      process.stderr.write(`\r\x1b[K${text}`);
      this.open = true;
    } else process.stderr.write(`${text}\n`);
  }

  /** Ends the rewritten line on a terminal, so what follows starts on a fresh line. */
  done(): void {
    if (this.open) process.stderr.write('\n');
    this.open = false;
  }
}
