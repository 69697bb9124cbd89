// matvec_f32: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of an f32 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q: the chunk's [rows, cols] floats as u32 bits;
// y [>= row_offset + rows] f32.
// Several tokens (prefill on CPU adapters, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// Dispatch: ceil(rows / 4) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads. Thread t reads the 4-element blocks t, t + WG, ... of each of the workgroup's 4 rows and the
// matching vec4 of x once for all 4 rows. The WG partial sums of each row are then added through workgroup
// memory.

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params and combine() are in shaders/common/linear.wgsl, the
// bindings, word() and the loop over the blocks (sums()) in matvec_floats.wgsl, the entry point and the kernel's end
// in matvec.wgsl, which src/gpu/shaders.ts appends to this file.

// W[r, 4k..4k+3] (U's when `u`).
fn block(r: u32, k: u32, u: bool) -> vec4f {
  let i = r * params.cols + 4u * k;
  return bitcast<vec4f>(vec4u(word(i, u), word(i + 1u, u), word(i + 2u, u), word(i + 3u, u)));
}

// Element e of W's chunk (U's when `u`).
fn value_at(e: u32, u: bool) -> f32 {
  return bitcast<f32>(word(e, u));
}
