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
  finish(t, first, wg.z, acc);
}
