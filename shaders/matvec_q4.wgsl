// matvec_q4: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of a q4 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q [rows, G] vec4<u32> with G = ceil(cols / 32)
// (one group of 32 nibbles per vec4; word j holds elements 8j..8j+7, element 8j+i in bits 4i..4i+3);
// w_s [rows, G] scales (f16 pairs when SCALE_F16, else f32); y [>= row_offset + rows] f32.
// Several tokens (prefill on CPU adapters, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// value = (nibble - 8) * scale, so a group contributes scale * (sum_i nibble_i x_i - 8 sum_i x_i); the x sum is
// shared by the workgroup's rows.
// Dispatch: ceil(rows / 4) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads; a workgroup computes 4 rows. Thread t takes groups t, t + WG, ... of all 4 rows (neighbouring threads
// read neighbouring 16-byte groups) and loads the group's 8 vec4s of x once for the 4 rows. The WG partial sums
// of each row are added through workgroup memory.

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params, combine() and the kernel's end (finish()) are in
// shaders/common/linear.wgsl and matvec_finish.wgsl, which src/gpu/shaders.ts appends to this file.

override WG: u32 = 64u;
override SCALE_F16: bool = true;

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w_q: array<vec4u>;
@group(0) @binding(3) var<storage, read> w_s: array<u32>;
@group(0) @binding(4) var<storage, read> u_q: array<vec4u>;
@group(0) @binding(5) var<storage, read> u_s: array<u32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
@group(0) @binding(7) var<storage, read_write> xn: array<f32>;
@group(0) @binding(8) var<uniform> params: Params;

// sum_i nibble_i * x_i over one word: elements 0..3 of the word against xa, 4..7 against xb.
fn word_dot(q: u32, xa: vec4f, xb: vec4f) -> f32 {
  let lo = vec4f((vec4u(q) >> vec4u(0u, 4u, 8u, 12u)) & vec4u(15u));
  let hi = vec4f((vec4u(q) >> vec4u(16u, 20u, 24u, 28u)) & vec4u(15u));
  return dot(lo, xa) + dot(hi, xb);
}

// Group i of W, or of U when `u`.
fn group_at(i: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}

fn group_dot(q: vec4u, xv: array<vec4f, 8>) -> f32 {
  return word_dot(q.x, xv[0], xv[1]) + word_dot(q.y, xv[2], xv[3]) + word_dot(q.z, xv[4], xv[5]) + word_dot(q.w, xv[6], xv[7]);
}

// Group g of rows (r.x, r.y, r.z, r.w) (given as r * G) against that group's 32 values of x.
fn rows_dot(r: vec4u, g: u32, xv: array<vec4f, 8>) -> vec4f {
  let s = xv[0] + xv[1] + xv[2] + xv[3] + xv[4] + xv[5] + xv[6] + xv[7];
  let xsum = 8.0 * (s.x + s.y + s.z + s.w);
  let d = vec4f(group_dot(w_q[r.x + g], xv), group_dot(w_q[r.y + g], xv), group_dot(group_at(r.z + g, SWIGLU), xv), group_dot(group_at(r.w + g, SWIGLU), xv));
  let scales = vec4f(scale_at(r.x + g, false), scale_at(r.y + g, false), scale_at(r.z + g, SWIGLU), scale_at(r.w + g, SWIGLU));
  return scales * (d - xsum);
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
  finish(t, first, wg.z, acc);
}
