// matvec_q8: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of a q8 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q [rows, G, 2] vec4<u32> with G = ceil(cols / 32)
// (one group of 32 int8 per two vec4s; word j holds elements 4j..4j+3, element 4j+b in byte b, two's complement);
// w_s [rows, G] scales (f16 pairs when SCALE_F16, else f32); y [>= row_offset + rows] f32.
// Several tokens (prefill on CPU adapters, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride]. value = q * scale.
// Dispatch: ceil(rows / 4) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads; a workgroup computes 4 rows. Thread t takes groups t, t + WG, ... of all 4 rows (neighbouring threads
// read neighbouring 32-byte groups) and loads the group's 8 vec4s of x once for the 4 rows. The WG partial sums
// of each row are added through workgroup memory.

// SWIGLU: y[row_offset + r] = silu(W[r] . x) * (U[r] . x), the Llama FFN's SwiGLU in one dispatch (W is w1; U,
// bound as u_q (and u_s), is w3, of the same shape and chunking): a workgroup computes 2 rows of each, so the
// dispatch takes ceil(rows / 2) workgroups. Otherwise U is unused (bound to W).
// NORM_IN (decode): x is RMSNorm's x * g without the 1 / rms, and x[cols .. cols + norm_parts) holds partial sums of
// x^2 (both written by the op that produced x, with NORM_OUT): the results are scaled by 1 / sqrt(sum / cols + eps),
// which folds the RMSNorm into this op.
// NORM_OUT (decode, with mode 1, the residual add): also stores the new y rows times g, and each workgroup's sum of
// their squares, into xn = [g (norm_dim) | y * g (norm_dim) | one sum per OUT_ROWS rows], the next op's NORM_IN.

override WG: u32 = 64u;
override SCALE_F16: bool = true;
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
@group(0) @binding(2) var<storage, read> w_q: array<vec4u>;
@group(0) @binding(3) var<storage, read> w_s: array<u32>;
@group(0) @binding(4) var<storage, read> u_q: array<vec4u>;
@group(0) @binding(5) var<storage, read> u_s: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> xn: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

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

// Word i of W's scales, or of U's when `u`.
fn scale_word(i: u32, u: bool) -> u32 {
  if (u) {
    return u_s[i];
  }
  return w_s[i];
}

fn scale_at(i: u32, u: bool) -> f32 {
  if (SCALE_F16) {
    let pair = unpack2x16float(scale_word(i >> 1u, u));
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(scale_word(i, u));
}

// The four signed bytes of q, byte b in lane b.
fn bytes_of(q: u32) -> vec4f {
  return vec4f(bitcast<vec4i>(vec4u(q) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u));
}

// sum_c q_c x_c over group i (= row * G + g) against that group's 32 values of x.
// Word pair j of W, or of U when `u`.
fn pair_at(j: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[j];
  }
  return w_q[j];
}

fn group_dot(i: u32, xv: array<vec4f, 8>, u: bool) -> f32 {
  let a = pair_at(2u * i, u);
  let b = pair_at(2u * i + 1u, u);
  return dot(bytes_of(a.x), xv[0]) + dot(bytes_of(a.y), xv[1]) + dot(bytes_of(a.z), xv[2]) + dot(bytes_of(a.w), xv[3]) +
    dot(bytes_of(b.x), xv[4]) + dot(bytes_of(b.y), xv[5]) + dot(bytes_of(b.z), xv[6]) + dot(bytes_of(b.w), xv[7]);
}

// Group g of rows (r.x, r.y, r.z, r.w) (given as r * G).
fn rows_dot(r: vec4u, g: u32, xv: array<vec4f, 8>) -> vec4f {
  let d = vec4f(group_dot(r.x + g, xv, false), group_dot(r.y + g, xv, false), group_dot(r.z + g, xv, SWIGLU), group_dot(r.w + g, xv, SWIGLU));
  return vec4f(scale_at(r.x + g, false), scale_at(r.y + g, false), scale_at(r.z + g, SWIGLU), scale_at(r.w + g, SWIGLU)) * d;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let first = (wg.y * nwg.x + wg.x) * OUT_ROWS;
  let cols = params.cols;
  // Token wg.z: x row wg.z (cols a multiple of 4 when there are several, so rows start on a vec4), y row wg.z.
  let x4_base = wg.z * (cols / 4u);
  let x_base = wg.z * cols;
  let groups = (cols + 31u) / 32u;
  // Rows past the chunk (the last workgroup) read the last row again and are not written.
  // With SWIGLU, slots z and w are the same rows of U.
  let r = min(vec4u(first) + select(vec4u(0u, 1u, 2u, 3u), vec4u(0u, 1u, 0u, 1u), SWIGLU), vec4u(params.rows - 1u)) * groups;
  var acc = vec4f(0.0);
  let full = cols / 32u;
  for (var g = t; g < full; g += WG) {
    var xv: array<vec4f, 8>;
    for (var i = 0u; i < 8u; i++) {
      xv[i] = x4[x4_base + 8u * g + i];
    }
    acc += rows_dot(r, g, xv);
  }
  // The last group when cols is not a multiple of 32: x read one value at a time, zero past cols.
  if (full < groups && t == full % WG) {
    var xv: array<vec4f, 8>;
    for (var i = 0u; i < 8u; i++) {
      let c = 32u * full + 4u * i;
      xv[i] = select(vec4f(0.0), vec4f(x[x_base + min(c, cols - 1u)], x[x_base + min(c + 1u, cols - 1u)], x[x_base + min(c + 2u, cols - 1u)], x[x_base + min(c + 3u, cols - 1u)]), vec4u(c) + vec4u(0u, 1u, 2u, 3u) < vec4u(cols));
    }
    acc += rows_dot(r, full, xv);
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
