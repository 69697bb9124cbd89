// The bindings of the lanes kernels whose weights have scales (matmul_lanes_q4, matmul_lanes_q6k), appended by
// src/gpu/shaders.ts: X [n, cols] f32 as vec4s, W's data w_q and scales w_s, U's (u_q, u_s; W again without
// SWIGLU), Y, xn (NORM_OUT) and the Params of common/linear.wgsl.

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> w_q: array<vec4u>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;
@group(0) @binding(3) var<storage, read> u_q: array<vec4u>;
@group(0) @binding(4) var<storage, read> u_s: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read_write> xn: array<f32>;
@group(0) @binding(7) var<uniform> params: Params;

// Vec4 i of W's data, or of U's when `u`.
fn vec_at(i: u32, u: bool) -> vec4u {
  if (u) {
    return u_q[i];
  }
  return w_q[i];
}
