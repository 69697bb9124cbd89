// matvec_f16: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of an f16 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q: the chunk's [rows, cols] halves, two per u32
// (element e of the chunk in the low half of word e/2 when e is even, the high half when odd), read with
// unpack2x16float; y [>= row_offset + rows] f32.
// Several tokens (prefill on CPU adapters, src/gpu/ops/matmul.ts): dispatch z = n, x [n, cols], y [n, y_stride].
// Dispatch: ceil(rows / 4) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads. Thread t reads the 4-element blocks t, t + WG, ... of each of the workgroup's 4 rows (two words
// each when cols is even, so rows start on a word), and the matching vec4 of x once for all 4 rows. The WG
// partial sums of each row are then added through workgroup memory.

// SWIGLU, NORM_IN and NORM_OUT (the fused variants), Params and combine() are in shaders/common/linear.wgsl, the
// bindings, word() and the loop over the blocks (sums()) in matvec_floats.wgsl, the entry point and the kernel's end
// in matvec.wgsl, which src/gpu/shaders.ts appends to this file.

// Element e of W's chunk (U's when `u`).
fn value_at(e: u32, u: bool) -> f32 {
  let pair = unpack2x16float(word(e >> 1u, u));
  return select(pair.x, pair.y, (e & 1u) == 1u);
}

// W[r, 4k..4k+3] (U's when `u`).
fn block(r: u32, k: u32, u: bool) -> vec4f {
  let cols = params.cols;
  if ((cols & 1u) == 0u) {
    let i = r * (cols / 2u) + 2u * k;
    return vec4f(unpack2x16float(word(i, u)), unpack2x16float(word(i + 1u, u)));
  }
  let e = r * cols + 4u * k;
  return vec4f(value_at(e, u), value_at(e + 1u, u), value_at(e + 2u, u), value_at(e + 3u, u));
}
