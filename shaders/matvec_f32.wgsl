// matvec_f32: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of an f32 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q: the chunk's [rows, cols] floats as u32 bits;
// y [>= row_offset + rows] f32.
// Several tokens (prefill on CPU adapters, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// Dispatch: ceil(rows / ROWS) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads. Thread t reads the 4-element blocks t, t + WG, ... of each of the workgroup's ROWS rows and the
// matching vec4 of x once for all ROWS rows. The WG partial sums of each row are then added through workgroup
// memory.

// SWIGLU: y[row_offset + r] = silu(W[r] . x) * (U[r] . x), the Llama FFN's SwiGLU in one dispatch (W is w1; U,
// bound as u_q (and u_s), is w3, of the same shape and chunking): a workgroup computes 2 rows of each, so the
// dispatch takes ceil(rows / 2) workgroups. Otherwise U is unused (bound to W).
// NORM_IN (decode): x is RMSNorm's x * g without the 1 / rms, and x[cols .. cols + norm_parts) holds partial sums of
// x^2 (both written by the op that produced x, with NORM_OUT): the results are scaled by 1 / sqrt(sum / cols + eps),
// which folds the RMSNorm into this op.
// NORM_OUT (decode, with mode 1, the residual add): also stores the new y rows times g, and each workgroup's sum of
// their squares, into xn = [g (norm_dim) | y * g (norm_dim) | one sum per OUT_ROWS rows], the next op's NORM_IN.

override WG: u32 = 64u;
const ROWS: u32 = 4u;
override SWIGLU: bool = false;
override NORM_IN: bool = false;
override NORM_OUT: bool = false;
// Rows of y a workgroup writes: 4, or 2 with SWIGLU (its 4 row slots then hold 2 rows of W and the same 2 of U).
override OUT_ROWS: u32 = select(4u, 2u, SWIGLU);

struct Params {
  rows: u32,
  cols: u32,
  row_offset: u32,
  mode: u32, // 0 store, 1 add, 2 SwiGLU gate (combine)
  y_stride: u32,
  norm_parts: u32, // NORM_IN: partial sums of x^2 after x's cols values
  norm_eps: f32, // NORM_IN
  norm_dim: u32, // NORM_OUT: rows of y, the width of g in xn
}

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w_q: array<u32>;
@group(0) @binding(3) var<storage, read> u_q: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> xn: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> partial: array<vec4f, WG>;
var<workgroup> norm_sh: array<f32, WG>; // NORM_IN: each thread's share of the partial sums of x^2
var<workgroup> sq_sh: array<f32, 4>; // NORM_OUT: squares of the new y rows (zero past the chunk)

// silu(g) = g / (1 + e^-g), through exp(-|g|), which never overflows.
fn silu(g: f32) -> f32 {
  let e = exp(-abs(g));
  return g * select(e / (1.0 + e), 1.0 / (1.0 + e), g >= 0.0);
}

// y[i]'s new value from the row's result v, by params.mode: 0 v; 1 y[i] + v (the residual stream); 2 silu(y[i]) * v
// (the SwiGLU gate: y holds W1 x, this weight is W3).
fn combine(old: f32, v: f32) -> f32 {
  if (params.mode == 2u) {
    return silu(old) * v;
  }
  return select(v, old + v, params.mode == 1u);
}

// Word i of W, or of U when `u`.
fn word(i: u32, u: bool) -> u32 {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}

// W[r, 4k..4k+3] (U's when `u`).
fn block(r: u32, k: u32, u: bool) -> vec4f {
  let i = r * params.cols + 4u * k;
  return bitcast<vec4f>(vec4u(word(i, u), word(i + 1u, u), word(i + 2u, u), word(i + 3u, u)));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let first = (wg.y * nwg.x + wg.x) * OUT_ROWS;
  let cols = params.cols;
  // Token wg.z: x row wg.z (cols a multiple of 4 when there are several, so rows start on a vec4), y row wg.z.
  let x4_base = wg.z * (cols / 4u);
  let x_base = wg.z * cols;
  // Rows past the chunk (the last workgroup) read the last row again and are not written.
  let last = params.rows - 1u;
  let r0 = min(first, last);
  let r1 = min(first + 1u, last);
  // With SWIGLU, slots 2 and 3 are the same rows of U.
  let r2 = select(min(first + 2u, last), r0, SWIGLU);
  let r3 = select(min(first + 3u, last), r1, SWIGLU);
  var acc = vec4f(0.0);
  let full = cols / 4u;
  for (var k = t; k < full; k += WG) {
    let xv = x4[x4_base + k];
    acc += vec4f(dot(block(r0, k, false), xv), dot(block(r1, k, false), xv), dot(block(r2, k, SWIGLU), xv), dot(block(r3, k, SWIGLU), xv));
  }
  // The last cols % 4 elements, one at a time.
  if (t == full % WG) {
    for (var c = full * 4u; c < cols; c++) {
      let xc = x[x_base + c];
      acc += xc * bitcast<vec4f>(vec4u(w_q[r0 * cols + c], w_q[r1 * cols + c], word(r2 * cols + c, SWIGLU), word(r3 * cols + c, SWIGLU)));
    }
  }
  partial[t] = acc;
  if (NORM_IN) {
    var s = 0.0;
    for (var p = t; p < params.norm_parts; p += WG) {
      s += x[cols + p];
    }
    norm_sh[t] = s;
  }
  workgroupBarrier();
  if (t < OUT_ROWS) {
    var sum = 0.0;
    var up = 0.0;
    var ss = 0.0;
    for (var i = 0u; i < WG; i++) {
      sum += partial[i][t];
      up += partial[i][(t + 2u) % 4u];
      ss += norm_sh[i];
    }
    if (NORM_IN) {
      let inv_rms = inverseSqrt(ss / f32(cols) + params.norm_eps);
      sum *= inv_rms;
      up *= inv_rms;
    }
    if (first + t < params.rows) {
      let i = wg.z * params.y_stride + params.row_offset + first + t;
      let v = select(combine(y[i], sum), silu(sum) * up, SWIGLU);
      y[i] = v;
      if (NORM_OUT) {
        let row = params.row_offset + first + t;
        xn[params.norm_dim + row] = v * xn[row];
        sq_sh[t] = v * v;
      }
    }
  }
  if (NORM_OUT) {
    workgroupBarrier();
    if (t == 0u) {
      xn[2u * params.norm_dim + (params.row_offset + first) / OUT_ROWS] = sq_sh[0] + sq_sh[1] + sq_sh[2] + sq_sh[3];
    }
  }
}
