// kv_write: key_cache[pos + t, :] = k[t, :], value_cache[pos + t, :] = v[t, :] for the n tokens of the step.
//
// Shapes: k, v [n, kv_dim] f32 (k after RoPE); key_cache, value_cache [max_seq_len, kv_dim] f32.
// Elements move as vec4, so kv_dim is a multiple of 4 (checked by createKvCache).
// Dispatch: (ceil(kv_dim / 4 / WG), n, 1) workgroups of WG threads; one thread per vec4 of a row.

override WG: u32 = 64u;

struct Params {
  kv_dim4: u32, // kv_dim / 4
  max_seq_len: u32,
}

struct Step {
  pos: u32,
  n_tokens: u32,
  seed: u32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> k: array<vec4f>;
@group(0) @binding(1) var<storage, read> v: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> key_cache: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> value_cache: array<vec4f>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = step.pos + gid.y;
  if (gid.x >= params.kv_dim4 || row >= params.max_seq_len) {
    return;
  }
  let src = gid.y * params.kv_dim4 + gid.x;
  let dst = row * params.kv_dim4 + gid.x;
  key_cache[dst] = k[src];
  value_cache[dst] = v[src];
}
