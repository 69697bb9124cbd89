// rmsnorm: out[r, i] = x[r, i] * weight[i] / sqrt(mean_j(x[r, j]^2) + eps)
//
// Shapes: x [rows, dim] f32, weight [dim] f32, out [rows, dim] f32.
// Dispatch: (rows, 1, 1) workgroups of WG threads; one workgroup reduces one row through workgroup memory.
// WG must be a power of two.

override WG: u32 = 256u;

struct Params {
  dim: u32,
  eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = wg.x * params.dim;
  var sum = 0.0;
  for (var i = lid; i < params.dim; i += WG) {
    let v = x[base + i];
    sum += v * v;
  }
  partial[lid] = sum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let scale = inverseSqrt(partial[0] / f32(params.dim) + params.eps);
  for (var i = lid; i < params.dim; i += WG) {
    out[base + i] = x[base + i] * scale * weight[i];
  }
}
