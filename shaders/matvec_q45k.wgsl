// matvec_q45k: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of a q4k weight, or a q5k
// weight with Q5 (ggml's block_q4_K and block_q5_K kept as they are; shaders/README.md, shaders/common/kquants.wgsl).
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars), cols a multiple of 256; w_q [rows, cols / 256, B]
// vec4<u32>, one block per 256 values: q4k (B = 9, 144 bytes): vec4 0 the header d | dmin, scales[12], vec4s 1 + 2k,
// 2 + 2k the qs of sub-blocks 2k and 2k + 1; q5k (B = 11, 176 bytes): the header, vec4s 1 and 2 qh (the fifth
// bits), vec4s 3 + 2k, 4 + 2k the qs; y [>= row_offset + rows] f32.
// Several tokens (prefill on lavapipe, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// A pair of sub-blocks contributes d sc_a (q_a . x_a) + d sc_b (q_b . x_b) - dmin (m_a sum x_a + m_b sum x_b); the
// x sums are shared by the workgroup's rows.
// Dispatch: ceil(rows / 4) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads; a workgroup computes 4 rows. Thread t takes the 64-value pairs t, t + WG, ... of all 4 rows and loads
// the pair's 16 vec4s of x once for the 4 rows. The WG partial sums of each row are added through workgroup memory.

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params and combine() are in shaders/common/linear.wgsl, the
// block arithmetic in kquants.wgsl, the loop over the pairs (sums()) in matvec_kparts.wgsl, the entry point and the
// kernel's end in matvec.wgsl, which src/gpu/shaders.ts appends to this file.

override Q5: bool = false;
// Vec4s per block.
override B: u32 = select(9u, 11u, Q5);

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w_q: array<vec4u>;
@group(0) @binding(3) var<storage, read> u_q: array<vec4u>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> xn: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;

// Vec4 i of W, or of U when `u`.
fn vec_at(i: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}

// Pair k of block `blk` (a row's block index) against the pair's x (xv[0..7] sub-block 2k, xv[8..15] 2k + 1)
// whose sums are xs.
fn pair_dot(blk: u32, k: u32, xv: array<vec4f, 16>, xs: vec2f, u: bool) -> f32 {
  let o = B * blk;
  let h = vec_at(o, u);
  let qa = vec_at(o + B - 8u + 2u * k, u);
  let qb = vec_at(o + B - 7u + 2u * k, u);
  // q5k's fifth bits of the pair's values (qh bytes 0..15 with qa, 16..31 with qb); none for q4k.
  var ha = vec4u(0u);
  var hb = vec4u(0u);
  if (Q5) {
    ha = vec_at(o + 1u, u);
    hb = vec_at(o + 2u, u);
  }
  let ja = 2u * k;
  let jb = ja + 1u;
  let a = k4_scale_min(h, ja);
  let b = k4_scale_min(h, jb);
  let da = dot(k_nibbles(qa.x, false) + k5_high(ha.x, ja), xv[0]) + dot(k_nibbles(qa.y, false) + k5_high(ha.y, ja), xv[1]) +
    dot(k_nibbles(qa.z, false) + k5_high(ha.z, ja), xv[2]) + dot(k_nibbles(qa.w, false) + k5_high(ha.w, ja), xv[3]) +
    dot(k_nibbles(qb.x, false) + k5_high(hb.x, ja), xv[4]) + dot(k_nibbles(qb.y, false) + k5_high(hb.y, ja), xv[5]) +
    dot(k_nibbles(qb.z, false) + k5_high(hb.z, ja), xv[6]) + dot(k_nibbles(qb.w, false) + k5_high(hb.w, ja), xv[7]);
  let db = dot(k_nibbles(qa.x, true) + k5_high(ha.x, jb), xv[8]) + dot(k_nibbles(qa.y, true) + k5_high(ha.y, jb), xv[9]) +
    dot(k_nibbles(qa.z, true) + k5_high(ha.z, jb), xv[10]) + dot(k_nibbles(qa.w, true) + k5_high(ha.w, jb), xv[11]) +
    dot(k_nibbles(qb.x, true) + k5_high(hb.x, jb), xv[12]) + dot(k_nibbles(qb.y, true) + k5_high(hb.y, jb), xv[13]) +
    dot(k_nibbles(qb.z, true) + k5_high(hb.z, jb), xv[14]) + dot(k_nibbles(qb.w, true) + k5_high(hb.w, jb), xv[15]);
  return a.x * da + b.x * db - (a.y * xs.x + b.y * xs.y);
}

// Pair p (sub-blocks 2k, 2k + 1 of block b) of the rows r (given as row * blocks) against the x row from x4_base.
fn part_sums(r: vec4u, p: u32, x4_base: u32) -> vec4f {
  var xv: array<vec4f, 16>;
  var s = vec4f(0.0);
  var s2 = vec4f(0.0);
  for (var i = 0u; i < 8u; i++) {
    xv[i] = x4[x4_base + 16u * p + i];
    xv[i + 8u] = x4[x4_base + 16u * p + 8u + i];
    s += xv[i];
    s2 += xv[i + 8u];
  }
  let xs = vec2f(dot(s, vec4f(1.0)), dot(s2, vec4f(1.0)));
  let b = p / 4u;
  let k = p % 4u;
  return vec4f(pair_dot(r.x + b, k, xv, xs, false), pair_dot(r.y + b, k, xv, xs, false), pair_dot(r.z + b, k, xv, xs, SWIGLU), pair_dot(r.w + b, k, xv, xs, SWIGLU));
}
