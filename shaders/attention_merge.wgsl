// attention_merge (pass 2 of 2): combines the per-split partial results of attention.wgsl for every query row.
//
//   M = max_s m_s,   out[t, h*head_dim + d] = sum_s e^(m_s - M) acc_s[d] / sum_s e^(m_s - M) l_s
// over the splits s that row (t, h) reached (s * L <= pos + t; the others were not written).
//
// Shapes: part_acc [n * n_heads, S, head_dim] f32; part_ml [n * n_heads, S] vec2 (m, l); splits [max_tokens + 1]
// u32 (S for each n, the table attention.ts dispatched pass 1 with); out [n, n_heads * head_dim] f32.
// Dispatch: (ceil(n * n_heads * head_dim / 4 / WG), 1, 1) workgroups of WG threads; one thread per vec4 of out.

override WG: u32 = 64u;
override CHUNK: u32 = 128u; // attention.wgsl's WG: splits are whole chunks of keys
override HD4: u32 = 32u;

struct Params {
  n_heads: u32,
  kv_mul: u32,
  kv_dim4: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> part_acc: array<vec4f>;
@group(0) @binding(1) var<storage, read> part_ml: array<vec2f>;
@group(0) @binding(2) var<storage, read> splits: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = step.n_tokens;
  let idx = gid.x;
  if (idx >= n * params.n_heads * HD4) {
    return;
  }
  let row = idx / HD4;
  let c = idx % HD4;
  let t = row / params.n_heads;
  let n_splits = splits[n];
  let total = step.pos + n;
  let per_split = ((total + n_splits - 1u) / n_splits + CHUNK - 1u) / CHUNK * CHUNK;
  let reached = min(n_splits, (step.pos + t) / per_split + 1u);
  let base = row * n_splits;
  var m = part_ml[base].x;
  for (var s = 1u; s < reached; s++) {
    m = max(m, part_ml[base + s].x);
  }
  var acc = vec4f(0.0);
  var l = 0.0;
  for (var s = 0u; s < reached; s++) {
    let ml = part_ml[base + s];
    let w = exp(ml.x - m);
    acc += w * part_acc[(base + s) * HD4 + c];
    l += w * ml.y;
  }
  out[idx] = acc / l;
}
