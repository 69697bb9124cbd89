/** A small, strict option parser for the CLI: `--name value` and `--flag`; unknown options are errors. */

// UsageError and CliError are the command line's own, never thrown by the library, so they stay out of the error
// catalogue (src/errors.ts) and its codes.

/** Arguments the command does not take: reported with the command's usage. */
export class UsageError extends Error {}

/** A failure the command line reports as one line on stderr with exit status 1 (e.g. a missing package folder). */
export class CliError extends Error {}

/** True when the arguments ask for a command's usage. */
export function wantsHelp(args: string[]): boolean {
  return args.some((a) => a === '--help' || a === '-h');
}

export interface ParsedArgs {
  positional: string[];
  options: Map<string, string | true>;
}

export function parseArgs(args: string[], spec: { values?: string[]; flags?: string[] }): ParsedArgs {
  const values = new Set(spec.values ?? []);
  const flags = new Set(spec.flags ?? []);
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
      if (flags.has(name)) options.set(name, true);
      else if (values.has(name)) {
        const v = inline ?? args[++i];
        if (v === undefined) throw new UsageError(`--${name} needs a value`);
        options.set(name, v);
      } else throw new UsageError(`unknown option --${name}`);
    } else positional.push(a);
  }
  return { positional, options };
}

export function numberOption(p: ParsedArgs, name: string, fallback: number): number;
export function numberOption(p: ParsedArgs, name: string, fallback?: number): number | undefined;
export function numberOption(p: ParsedArgs, name: string, fallback?: number): number | undefined {
  const v = p.options.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${String(v)}`);
  return n;
}

/** An integer option of at least `min`. */
export function integerOption(p: ParsedArgs, name: string, fallback: number, min: number): number {
  const n = numberOption(p, name, fallback);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer of at least ${min}, got ${String(p.options.get(name))}`);
  return n;
}

/** A value option that must be one of `choices`. */
export function choiceOption<T extends string>(p: ParsedArgs, name: string, choices: readonly T[], fallback: T): T {
  const v = p.options.get(name) ?? fallback;
  if (!(choices as readonly unknown[]).includes(v)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got ${String(v)}`);
  return v as T;
}
