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

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params and combine() are in shaders/common/linear.wgsl, the
// bindings and vec_at() in matvec_scaled.wgsl, SCALE_F16 and scale_at() in scales.wgsl, the block arithmetic in
// kquants.wgsl, the loop over the parts (sums()) in matvec_kparts.wgsl, the entry point and the kernel's end in
// matvec.wgsl, which src/gpu/shaders.ts appends to this file.

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

// Part p (half h, sixteen-value part i of block b) of the rows r (given as row * blocks) against the x row from
// x4_base.
fn part_sums(r: vec4u, p: u32, x4_base: u32) -> vec4f {
  let b = p / 4u;
  let h = (p / 2u) % 2u;
  let i = p % 2u;
  // Runs r of the part start at value 256b + 128h + 32r + 16i: vec4 64b + 32h + 8r + 4i.
  var xv: array<vec4f, 16>;
  for (var j = 0u; j < 16u; j++) {
    xv[j] = x4[x4_base + 64u * b + 32u * h + 8u * (j / 4u) + 4u * i + j % 4u];
  }
  return vec4f(part_dot(r.x + b, h, i, xv, false), part_dot(r.y + b, h, i, xv, false), part_dot(r.z + b, h, i, xv, SWIGLU), part_dot(r.w + b, h, i, xv, SWIGLU));
}
