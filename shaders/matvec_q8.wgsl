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

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params and combine() are in shaders/common/linear.wgsl, the
// bindings and vec_at() in matvec_scaled.wgsl, SCALE_F16 and scale_at() in scales.wgsl, the loop over the groups
// (sums()) in matvec_groups.wgsl, the entry point and the kernel's end in matvec.wgsl, which src/gpu/shaders.ts
// appends to this file.

// The four signed bytes of q, byte b in lane b.
fn bytes_of(q: u32) -> vec4f {
  return vec4f(bitcast<vec4i>(vec4u(q) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u));
}

// sum_c q_c x_c over group i (= row * G + g) of W (U when `u`) against that group's 32 values of x.
fn group_dot(i: u32, xv: array<vec4f, 8>, u: bool) -> f32 {
  let a = vec_at(2u * i, u);
  let b = vec_at(2u * i + 1u, u);
  return dot(bytes_of(a.x), xv[0]) + dot(bytes_of(a.y), xv[1]) + dot(bytes_of(a.z), xv[2]) + dot(bytes_of(a.w), xv[3]) +
    dot(bytes_of(b.x), xv[4]) + dot(bytes_of(b.y), xv[5]) + dot(bytes_of(b.z), xv[6]) + dot(bytes_of(b.w), xv[7]);
}

// Group g of rows (r.x, r.y, r.z, r.w) (given as r * G).
fn rows_dot(r: vec4u, g: u32, xv: array<vec4f, 8>) -> vec4f {
  let d = vec4f(group_dot(r.x + g, xv, false), group_dot(r.y + g, xv, false), group_dot(r.z + g, xv, SWIGLU), group_dot(r.w + g, xv, SWIGLU));
  return vec4f(scale_at(r.x + g, false), scale_at(r.y + g, false), scale_at(r.z + g, SWIGLU), scale_at(r.w + g, SWIGLU)) * d;
}
