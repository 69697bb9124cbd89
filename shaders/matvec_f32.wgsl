// matvec_f32: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of an f32 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q: the chunk's [rows, cols] floats as u32 bits;
// y [>= row_offset + rows] f32.
// Several tokens (prefill on CPU adapters, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// Dispatch: ceil(rows / ROWS) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads. Thread t reads the 4-element blocks t, t + WG, ... of each of the workgroup's ROWS rows and the
// matching vec4 of x once for all ROWS rows. The WG partial sums of each row are then added through workgroup
// memory.

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params, combine() and the kernel's end (finish()) are in
// shaders/common/linear.wgsl and matvec_finish.wgsl, which src/gpu/shaders.ts appends to this file.

override WG: u32 = 64u;
const ROWS: u32 = 4u;

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w_q: array<u32>;
@group(0) @binding(3) var<storage, read> u_q: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> xn: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

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
  finish(t, first, wg.z, acc);
}
