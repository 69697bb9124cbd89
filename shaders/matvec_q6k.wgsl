// matvec_q6k: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of a q6k weight (ggml's
// block_q6_K with d moved to w_s; shaders/README.md, shaders/common/kquants.wgsl).
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars), cols a multiple of 256; w_q [rows, cols / 256, 13]
// vec4<u32> (per 256 values: vec4s 0..7 ql, 8..11 qh, 12 the int8 scales); w_s [rows, cols / 256] the blocks' d
// (f16 pairs when SCALE_F16, else f32); y [>= row_offset + rows] f32.
// Several tokens (prefill on lavapipe, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// A part of a block is half h and sixteen-value part i of its 4 runs: values 128h + 32r + 16i .. + 15 (r < 4),
// read from ql vec4s 4h + i (runs 0, 2) and 4h + 2 + i (runs 1, 3) and qh vec4 8 + 2h + i.
// Dispatch: ceil(rows / 4) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads; a workgroup computes 4 rows. Thread t takes the parts t, t + WG, ... (4 per block) of all 4 rows and
// loads the part's 16 vec4s of x once for the 4 rows. The WG partial sums of each row are added through workgroup
// memory.

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params, combine() and the kernel's end (finish()) are in
// shaders/common/linear.wgsl and matvec_finish.wgsl, scale_at() in scales.wgsl, the block arithmetic in
// kquants.wgsl, which src/gpu/shaders.ts appends to this file.

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

// Vec4 i of W, or of U when `u`.
fn vec_at(i: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}

// Part (h, i) of block `blk` (a row's block index) against its x: xv[4r + w] holds values 4w .. 4w + 3 of run r.
fn part_dot(blk: u32, h: u32, i: u32, xv: array<vec4f, 16>, u: bool) -> f32 {
  let a = vec_at(13u * blk + 4u * h + i, u);
  let b = vec_at(13u * blk + 4u * h + 2u + i, u);
  let qh = vec_at(13u * blk + 8u + 2u * h + i, u);
  let sw = vec_at(13u * blk + 12u, u);
  let s = select(sw.xy, sw.zw, h == 1u);
  var sum = 0.0;
  for (var r = 0u; r < 4u; r++) {
    let q = select(a, b, (r & 1u) == 1u);
    let d = dot(k6_values(q.x, qh.x, r), xv[4u * r]) + dot(k6_values(q.y, qh.y, r), xv[4u * r + 1u]) +
      dot(k6_values(q.z, qh.z, r), xv[4u * r + 2u]) + dot(k6_values(q.w, qh.w, r), xv[4u * r + 3u]);
    sum += k6_scale(s, r, i) * d;
  }
  return scale_at(blk, u) * sum;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let first = (wg.y * nwg.x + wg.x) * OUT_ROWS;
  let cols = params.cols;
  let blocks = cols / 256u;
  // Token wg.z: x row wg.z, y row wg.z.
  let x4_base = wg.z * (cols / 4u);
  // Rows past the chunk (the last workgroup) read the last row again and are not written.
  // With SWIGLU, slots z and w are the same rows of U.
  let r = min(vec4u(first) + select(vec4u(0u, 1u, 2u, 3u), vec4u(0u, 1u, 0u, 1u), SWIGLU), vec4u(params.rows - 1u)) * blocks;
  var acc = vec4f(0.0);
  for (var p = t; p < cols / 64u; p += WG) {
    let b = p / 4u;
    let h = (p / 2u) % 2u;
    let i = p % 2u;
    // Runs r of the part start at value 256b + 128h + 32r + 16i: vec4 64b + 32h + 8r + 4i.
    var xv: array<vec4f, 16>;
    for (var j = 0u; j < 16u; j++) {
      xv[j] = x4[x4_base + 64u * b + 32u * h + 8u * (j / 4u) + 4u * i + j % 4u];
    }
    acc += vec4f(part_dot(r.x + b, h, i, xv, false), part_dot(r.y + b, h, i, xv, false), part_dot(r.z + b, h, i, xv, SWIGLU), part_dot(r.w + b, h, i, xv, SWIGLU));
  }
  finish(t, first, wg.z, acc);
}
