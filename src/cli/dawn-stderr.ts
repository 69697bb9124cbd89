/**
 * Dawn writes a fixed notice to the process's stderr from C++ whenever it sets up a Vulkan adapter:
 *   Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
 * (and the same for maxDynamicStorageBuffersPerPipelineLayout). No toggle or instance option turns it off, and it
 * bypasses Node's streams, so it cannot be silenced in the process that creates the instance. The command line
 * therefore runs itself in a child process whose stderr passes through DawnNoticeFilter, which drops exactly those
 * lines and passes everything else on unchanged and unbuffered. LLAMA_WEBGPU_DAWN_NOTICES=1 runs in one process and
 * shows them.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';

/** One of Dawn's limit notices, as a whole line. */
export const DAWN_LIMIT_NOTICE =
  /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const PREFIX = 'Warning: maxDynamic';
/** Set in the child: 'tty' when the parent's stderr is a terminal, else 'pipe'. */
export const CHILD_ENV = 'LLAMA_WEBGPU_CLI_CHILD';

/**
 * Drops Dawn's limit notices from a text stream. A line is held back only while it could still become a notice
 * (it starts like one and has not ended); any other text, including a progress line rewritten with \r, is written
 * as soon as it arrives.
 */
export class DawnNoticeFilter {
  private pending = '';
  private passing = false;

  constructor(private readonly write: (text: string) => void) {}

  push(chunk: string): void {
    let out = '';
    let i = 0;
    while (i < chunk.length) {
      const nl = chunk.indexOf('\n', i);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.slice(i, end);
      i = end;
      if (this.passing) {
        out += piece;
      } else {
        this.pending += piece;
        const body = nl < 0 ? this.pending : this.pending.slice(0, -1);
        const couldBe = body.length < PREFIX.length ? PREFIX.startsWith(body) : body.startsWith(PREFIX);
        if (nl >= 0) {
          if (!(couldBe && DAWN_LIMIT_NOTICE.test(body))) out += this.pending;
          this.pending = '';
        } else if (!couldBe) {
          out += this.pending;
          this.pending = '';
          this.passing = true;
        }
      }
      if (nl >= 0) this.passing = false;
    }
    if (out) this.write(out);
  }

  /** Writes a last unfinished line that was held back. */
  end(): void {
    if (this.pending) this.write(this.pending);
    this.pending = '';
  }
}

/** Whether this process should run the command itself (it is the child, or notices were asked for). */
export function runsInProcess(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[CHILD_ENV] !== undefined || env.LLAMA_WEBGPU_DAWN_NOTICES === '1';
}

/** In the child: stderr counts as a terminal when the parent's is one (the pipe in between is not). */
export function inheritStderrTty(): void {
  if (process.env[CHILD_ENV] === 'tty') Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
}

/**
 * Runs this same Node command (`argv`: the script and its arguments) again as a child with stdin and stdout shared and stderr filtered; resolves to the
 * child's exit status (128 + the signal number when a signal ended it).
 */
export function rerunWithFilteredStderr(argv: string[] = process.argv.slice(1)): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...argv], {
      stdio: ['inherit', 'inherit', 'pipe'],
      env: { ...process.env, [CHILD_ENV]: process.stderr.isTTY ? 'tty' : 'pipe' },
    });
    const filter = new DawnNoticeFilter((text) => process.stderr.write(text));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => filter.push(text));
    // Ctrl-C reaches the child from the terminal; the parent waits for it to finish. A kill is passed on.
    const onInt = () => undefined;
    const onTerm = () => child.kill('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const finish = (status: number) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(status);
    };
    child.on('error', (e) => {
      process.stderr.write(`could not start ${process.execPath}: ${e.message}\n`);
      finish(1);
    });
    child.on('close', (code, signal) => {
      filter.end();
      finish(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1));
    });
  });
}
