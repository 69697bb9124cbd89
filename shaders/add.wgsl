// add: x[t, i] += y[t, i] (the residual connection).
//
// Shapes: x [n, dim] f32 (in place), y [n, dim] f32.
// Dispatch: (ceil(dim / WG), n, 1) workgroups of WG threads; one thread per element of a row.

override WG: u32 = 256u;

struct Params {
  dim: u32,
}

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= params.dim) {
    return;
  }
  let i = gid.y * params.dim + gid.x;
  x[i] += y[i];
}
