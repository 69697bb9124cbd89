// Shared by the matrix-vector kernels (shaders/matvec_<dtype>.wgsl and matmul_lanes_q4.wgsl), appended to each by
// src/gpu/shaders.ts: their uniform, how a row's result is written into y, and the fused variants' switches.
// It reads the kernel's own `params` binding.
//
// SWIGLU: y[row_offset + r] = silu(W[r] . x) * (U[r] . x), the Llama FFN's SwiGLU in one dispatch (W is w1; U,
// bound as u_q (and u_s), is w3, of the same shape and chunking): a workgroup computes 2 rows of each, so the
// dispatch takes ceil(rows / 2) workgroups. Otherwise U is unused (bound to W).
// NORM_IN (decode): x is RMSNorm's x * g without the 1 / rms, and x[cols .. cols + norm_parts) holds partial sums of
// x^2 (both written by the op that produced x, with NORM_OUT): the results are scaled by 1 / sqrt(sum / cols + eps),
// which folds the RMSNorm into this op.
// NORM_OUT (decode, with mode 1, the residual add): also stores the new y rows times g, and each workgroup's sum of
// their squares, into xn = [g (norm_dim) | y * g (norm_dim) | one sum per OUT_ROWS rows], the next op's NORM_IN.

override SWIGLU: bool = false;
override NORM_IN: bool = false;
override NORM_OUT: bool = false;

struct Params {
  rows: u32,
  cols: u32,
  row_offset: u32,
  mode: u32, // 0 store, 1 add, 2 SwiGLU gate (combine)
  y_stride: u32,
  norm_parts: u32, // NORM_IN: partial sums of x^2 after x's cols values
  norm_eps: f32, // NORM_IN
  norm_dim: u32, // NORM_OUT: rows of y, the width of g in xn
}

// silu(g) = g / (1 + e^-g), through exp(-|g|), which never overflows.
fn silu(g: f32) -> f32 {
  let e = exp(-abs(g));
  return g * select(e / (1.0 + e), 1.0 / (1.0 + e), g >= 0.0);
}

// y[i]'s new value from the row's result v, by params.mode: 0 v; 1 y[i] + v (the residual stream); 2 silu(y[i]) * v
// (the SwiGLU gate: y holds W1 x, this weight is W3).
fn combine(old: f32, v: f32) -> f32 {
  if (params.mode == 2u) {
    return silu(old) * v;
  }
  return select(v, old + v, params.mode == 1u);
}
