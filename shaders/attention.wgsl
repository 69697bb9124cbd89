// attention (pass 1 of 2, flash-decoding): softmax-weighted partial sums of V over one split of the keys.
//
// Query row (t, h) is head h of token t of the step (position pos + t). Over the keys j of split s that it may see
// (causal: j <= pos + t), with score_j = q[t, h] . K[j, g] / sqrt(head_dim) and g = h / kv_mul its kv head (GQA):
//   m = max_j score_j,   l = sum_j exp(score_j - m),   acc = sum_j exp(score_j - m) * V[j, g]
// attention_merge.wgsl then combines the splits: out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s. A dispatch
// of one split (S = 1: every key in one workgroup's reach) writes out = acc / l itself, and no merge pass runs.
// Keys are visited in chunks of WG with a running max (online softmax), so workgroup memory stays a few KiB at
// any context length, and the S splits run in separate workgroups.
//
// Shapes: q [n, n_heads * head_dim] f32; key_cache, value_cache [max_seq_len, kv_dim], f16 when F16_CACHE (two per
//   u32, element 2i in the low half, read with unpack2x16float: no shader-f16 needed) else f32, both bound as pairs
//   of u32 words (a vec2u is 4 cached values in f16, 2 in f32); all arithmetic is f32;
//   part_acc [n * n_heads, S, head_dim] f32; part_ml [n * n_heads, S] vec2 (m, l); out [n, n_heads * head_dim] f32.
// Query t starts at q[t * q_stride4] (vec4s): q may be the leading part of a wider row (the qkv row).
// The rows sharing kv head g are numbered r = t * kv_mul + (h - g * kv_mul); a workgroup takes ROWS of them, so
// K and V are read once for every query head of a GQA group (and, in prefill, for ROWS tokens).
// Split s covers keys [s * L, (s + 1) * L) of the pos + n keys, L = ceil((pos + n) / S) rounded up to WG.
// Dispatch: (S, ceil(n * kv_mul / ROWS), n_kv_heads) workgroups of WG threads. HD4 = head_dim / 4 <= WG.

override WG: u32 = 128u;
override ROWS: u32 = 8u;
override HD4: u32 = 32u;
override F16_CACHE: bool = false;

// Per-row registers need a constant size; ROWS <= MAX_ROWS (checked when the op is built).
const MAX_ROWS: u32 = 8u;

struct Params {
  n_heads: u32,
  kv_mul: u32, // n_heads / n_kv_heads
  kv_dim4: u32, // kv_dim / 4
  scale: f32, // 1 / sqrt(head_dim)
  q_stride4: u32, // vec4s between the queries of consecutive tokens
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;
@group(0) @binding(1) var<storage, read> key_cache: array<vec2u>;
@group(0) @binding(2) var<storage, read> value_cache: array<vec2u>;
@group(0) @binding(3) var<storage, read_write> part_acc: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> part_ml: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<uniform> step: Step;

// Values 4i .. 4i + 3 of a cache, as f32.
fn key4(i: u32) -> vec4f {
  if (F16_CACHE) {
    let w = key_cache[i];
    return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
  }
  return vec4f(bitcast<vec2f>(key_cache[2u * i]), bitcast<vec2f>(key_cache[2u * i + 1u]));
}

fn value4(i: u32) -> vec4f {
  if (F16_CACHE) {
    let w = value_cache[i];
    return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
  }
  return vec4f(bitcast<vec2f>(value_cache[2u * i]), bitcast<vec2f>(value_cache[2u * i + 1u]));
}

// Below any real score; used instead of -inf, which shaders may not honour.
const NEG: f32 = -1e30;

var<workgroup> q_sh: array<vec4f, ROWS * HD4>; // pre-scaled queries [row, head_dim / 4]
var<workgroup> p_sh: array<f32, ROWS * WG>; // scores, then weights, of the current chunk [row, key]
var<workgroup> m_sh: array<f32, ROWS>; // running max per row
var<workgroup> red: array<vec4f, WG>;
var<workgroup> red_l: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wg: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let pos = step.pos;
  let kv_mul = params.kv_mul;
  let g = wg.z;
  let row0 = wg.y * ROWS;
  let nr = min(ROWS, step.n_tokens * kv_mul - row0);
  let total = pos + step.n_tokens;
  let per_split = ((total + nwg.x - 1u) / nwg.x + WG - 1u) / WG * WG;
  let start = wg.x * per_split;
  let last_visible = pos + (row0 + nr - 1u) / kv_mul; // the tile's last row sees keys up to here
  let end = min(min(start + per_split, total), last_visible + 1u);
  if (start >= end) {
    return; // nothing visible in this split: attention_merge skips it
  }

  for (var i = lid; i < nr * HD4; i += WG) {
    let r = row0 + i / HD4;
    let h = g * kv_mul + r % kv_mul;
    q_sh[i] = q[(r / kv_mul) * params.q_stride4 + h * HD4 + i % HD4] * params.scale;
  }
  if (lid < ROWS) {
    m_sh[lid] = NEG;
  }
  // V phase layout: thread (c, slice) accumulates vec4 c of head_dim over every slices-th key of a chunk.
  let c = lid % HD4;
  let slice = lid / HD4;
  let slices = WG / HD4;
  let kv_base = g * HD4;
  var m_prev: array<f32, MAX_ROWS>;
  var acc: array<vec4f, MAX_ROWS>;
  var l_part: array<f32, MAX_ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    m_prev[r] = NEG;
  }
  workgroupBarrier();

  for (var k0 = start; k0 < end; k0 += WG) {
    // Scores: one key per thread, against every row of the tile.
    let j = k0 + lid;
    var s: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) {
      s[r] = 0.0; // explicitly, every chunk: not every compiler re-initializes a variable declared in a loop
    }
    if (j < end) {
      let base = j * params.kv_dim4 + kv_base;
      for (var i = 0u; i < HD4; i++) {
        let kk = key4(base + i);
        for (var r = 0u; r < ROWS; r++) {
          s[r] += dot(q_sh[r * HD4 + i], kk);
        }
      }
    }
    for (var r = 0u; r < ROWS; r++) {
      let visible = j < end && r < nr && j <= pos + (row0 + r) / kv_mul;
      p_sh[r * WG + lid] = select(NEG, s[r], visible);
    }
    workgroupBarrier();
    if (lid < nr) {
      var cmax = m_sh[lid];
      for (var x = 0u; x < WG; x++) {
        cmax = max(cmax, p_sh[lid * WG + x]);
      }
      m_sh[lid] = cmax;
    }
    workgroupBarrier();
    for (var r = 0u; r < ROWS; r++) {
      let visible = j < end && r < nr && j <= pos + (row0 + r) / kv_mul;
      let i = r * WG + lid;
      p_sh[i] = select(0.0, exp(p_sh[i] - m_sh[r]), visible);
    }
    workgroupBarrier();
    if (slice < slices) {
      for (var r = 0u; r < ROWS; r++) {
        let alpha = exp(m_prev[r] - m_sh[r]);
        acc[r] *= alpha;
        l_part[r] *= alpha;
        m_prev[r] = m_sh[r];
      }
      let chunk = min(WG, end - k0);
      for (var x = slice; x < chunk; x += slices) {
        let vv = value4((k0 + x) * params.kv_dim4 + kv_base + c);
        for (var r = 0u; r < ROWS; r++) {
          let p = p_sh[r * WG + x];
          acc[r] += p * vv;
          l_part[r] += p;
        }
      }
    }
    workgroupBarrier();
  }

  // Sum the slices of each row and write the split's (m, l, acc).
  for (var r = 0u; r < nr; r++) {
    red[lid] = acc[r];
    red_l[lid] = l_part[r];
    workgroupBarrier();
    if (lid < HD4) {
      var a = vec4f(0.0);
      var l = 0.0;
      for (var x = 0u; x < slices; x++) {
        a += red[x * HD4 + lid];
        l += red_l[x * HD4 + lid];
      }
      let row = row0 + r;
      let h = g * kv_mul + row % kv_mul;
      let qr = (row / kv_mul) * params.n_heads + h;
      if (nwg.x == 1u) {
        out[qr * HD4 + lid] = a / l; // l >= 1: the row's largest score contributes exp(0)
      } else {
        let pr = qr * nwg.x + wg.x;
        part_acc[pr * HD4 + lid] = a;
        if (lid == 0u) {
          part_ml[pr] = vec2f(m_sh[r], l);
        }
      }
    }
    workgroupBarrier();
  }
}
