// The bindings and sums() of the matvec kernels for float weights (matvec_f32, matvec_f16), appended by
// src/gpu/shaders.ts: x [n, cols] f32 bound twice (as vec4s and as scalars), W's words w_q, U's (u_q; W again
// without SWIGLU), y, xn (NORM_OUT) and the Params of common/linear.wgsl. The kernel decodes the words:
// block(r, k, u) is W[r, 4k .. 4k + 3] (U's when u), value_at(e, u) element e of the chunk.

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

// Thread t reads the 4-element blocks t, t + WG, ... of the 4 row slots and the matching vec4 of x once for them.
fn sums(t: u32, z: u32, r: vec4u) -> vec4f {
  let cols = params.cols;
  // Token z: x row z (cols a multiple of 4 when there are several, so rows start on a vec4).
  let x4_base = z * (cols / 4u);
  let x_base = z * cols;
  var acc = vec4f(0.0);
  let full = cols / 4u;
  for (var k = t; k < full; k += WG) {
    let xv = x4[x4_base + k];
    acc += vec4f(dot(block(r.x, k, false), xv), dot(block(r.y, k, false), xv), dot(block(r.z, k, SWIGLU), xv), dot(block(r.w, k, SWIGLU), xv));
  }
  // The last cols % 4 elements, one at a time.
  if (t == full % WG) {
    for (var c = full * 4u; c < cols; c++) {
      let xc = x[x_base + c];
      acc += xc * vec4f(value_at(r.x * cols + c, false), value_at(r.y * cols + c, false), value_at(r.z * cols + c, SWIGLU), value_at(r.w * cols + c, SWIGLU));
    }
  }
  return acc;
}
