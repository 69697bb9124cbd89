/**
 * Comparing a kernel's float32 output with its float64 reference at a stated tolerance, shared by the kernel tests
 * and bench-kernels so that both hold a kernel to the same bound.
 */

/** The element furthest outside its tolerance: where, what the kernel gave, what the reference says, the bound. */
export interface Mismatch {
  index: number;
  got: number;
  want: number;
  tolerance: number;
  /** |got - want| / tolerance (Infinity for NaN, or for any error against a zero tolerance). */
  ratio: number;
}

/** |got - want| <= atol + rtol * |want|. */
export interface CloseTolerance {
  atol: number;
  rtol: number;
}

/** The per-element bound of a CloseTolerance against `want`. */
export function closeTo(t: CloseTolerance, want: ArrayLike<number>): (i: number) => number {
  return (i) => t.atol + t.rtol * Math.abs(want[i]);
}

/**
 * The element of `got` with the largest error relative to its tolerance `tolerance(i)` against `want`, within or
 * not (`ratio` <= 1 when within; NaN never is); undefined for empty arrays. Lengths must match.
 */
export function worstElement(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: (i: number) => number): Mismatch | undefined {
  if (got.length !== want.length) throw new RangeError(`worstElement: ${got.length} values, expected ${want.length}`);
  let worst: Mismatch | undefined;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const tol = tolerance(i);
    const ratio = d <= tol ? (tol > 0 ? d / tol : 0) : Number.isNaN(d) || tol <= 0 ? Infinity : Math.max(d / tol, 1 + 2 ** -52);
    if (!worst || ratio > worst.ratio) worst = { index: i, got: got[i], want: want[i], tolerance: tol, ratio };
  }
  return worst;
}

/** The worst element of `got` outside its tolerance (see worstElement), or undefined when all are within. */
export function worstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: (i: number) => number): Mismatch | undefined {
  const worst = worstElement(got, want, tolerance);
  return worst && worst.ratio > 1 ? worst : undefined;
}

/** A tolerance or value for messages: 3 significant digits, powers of two below 1e-3 as 2^-k ("2^-23", "1e-6"). */
export function formatNumber(x: number): string {
  if (x !== 0 && Math.abs(x) < 1e-3) {
    const k = Math.log2(Math.abs(x));
    if (Number.isInteger(k)) return `${x < 0 ? '-' : ''}2^${k}`;
    return x.toExponential(2).replace(/\.?0+e/, 'e');
  }
  return String(Number(x.toPrecision(3)));
}

/** "what[where] is got, expected want: error e is r x the tolerance t". */
export function describeMismatch(what: string, m: Mismatch, where = `[${m.index}]`): string {
  const err = Math.abs(m.got - m.want);
  const ratio = Number.isFinite(m.ratio) ? `${formatNumber(m.ratio)}x` : 'beyond';
  return `${what}${where} is ${m.got}, expected ${m.want}: error ${formatNumber(err)} is ${ratio} the tolerance ${formatNumber(m.tolerance)}`;
}
