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

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params and combine() are in shaders/common/linear.wgsl, the
// bindings and vec_at() in matvec_scaled.wgsl, SCALE_F16 and scale_at() in scales.wgsl, the loop over the groups
// (sums()) in matvec_groups.wgsl, the entry point and the kernel's end in matvec.wgsl, which src/gpu/shaders.ts
// appends to this file.

// sum_i nibble_i * x_i over one word: elements 0..3 of the word against xa, 4..7 against xb.
fn word_dot(q: u32, xa: vec4f, xb: vec4f) -> f32 {
  let lo = vec4f((vec4u(q) >> vec4u(0u, 4u, 8u, 12u)) & vec4u(15u));
  let hi = vec4f((vec4u(q) >> vec4u(16u, 20u, 24u, 28u)) & vec4u(15u));
  return dot(lo, xa) + dot(hi, xb);
}

fn group_dot(q: vec4u, xv: array<vec4f, 8>) -> f32 {
  return word_dot(q.x, xv[0], xv[1]) + word_dot(q.y, xv[2], xv[3]) + word_dot(q.z, xv[4], xv[5]) + word_dot(q.w, xv[6], xv[7]);
}

// Group g of rows (r.x, r.y, r.z, r.w) (given as r * G) against that group's 32 values of x.
fn rows_dot(r: vec4u, g: u32, xv: array<vec4f, 8>) -> vec4f {
  let s = xv[0] + xv[1] + xv[2] + xv[3] + xv[4] + xv[5] + xv[6] + xv[7];
  let xsum = 8.0 * (s.x + s.y + s.z + s.w);
  let d = vec4f(group_dot(w_q[r.x + g], xv), group_dot(w_q[r.y + g], xv), group_dot(vec_at(r.z + g, SWIGLU), xv), group_dot(vec_at(r.w + g, SWIGLU), xv));
  let scales = vec4f(scale_at(r.x + g, false), scale_at(r.y + g, false), scale_at(r.z + g, SWIGLU), scale_at(r.w + g, SWIGLU));
  return scales * (d - xsum);
}
