// rope: rotary position embedding, interleaved pairs (shaders/README.md), on q (in place) and k, and the step's
// keys (rotated) and values stored into the KV cache at positions pos .. pos + n - 1.
//
// For token t of the step (position p = pos + t) and pair i of every head:
//   (x[2i], x[2i+1]) <- (x[2i] cos a - x[2i+1] sin a, x[2i] sin a + x[2i+1] cos a),
//   a = (p / rope_scale) * theta^(-2i / rot_dims)   for i < rot_dims / 2 (rot_dims = head_dim for Llama 2),
//   a = 0 (freq[i] = 0: cos 1, sin 0 exactly, the pair passes through) for the other pairs.
// The angle is reduced modulo one turn exactly: freq[i] holds (theta^(-2i/rot_dims) / (rope_scale * 2 pi)) mod 1
// as a 64-bit fixed-point fraction (hi, lo words), so p * freq[i] mod 1 is an integer product mod 2^64 (a plain f32
// product p * freq loses ~2e-4 rad near position 4096). The top bits of that fraction pick the nearest quarter
// turn and the rest, within [-pi/4, pi/4], goes through sin/cos polynomials: WGSL only bounds the built-in sin/cos
// to 2^-11 absolute (some drivers are 2e-4 off), which would be the largest error of the whole attention block.
//
// Shapes: freq [head_dim / 2] vec2<u32>; qkv [n, qkv_dim] f32, each token's q [n_heads * head_dim], k [kv_dim]
// and v [kv_dim] side by side (kv_dim = n_kv_heads * head_dim; k and v are left as they are); key_cache,
// value_cache [max_seq_len, kv_dim], f16 when F16_CACHE
// (two per u32, element 2i in the low half; rounded as pack2x16float rounds) else f32, both bound as u32 words.
// Dispatch: (ceil((n_heads + 2 n_kv_heads) * head_dim / 2 / WG), n, 1) workgroups of WG threads; one thread per
// pair of q, of k (rotated into the cache) and of v (copied into the cache).

override WG: u32 = 64u;
override F16_CACHE: bool = false;

struct Params {
  n_heads: u32,
  n_kv_heads: u32,
  half_dim: u32, // head_dim / 2
  max_seq_len: u32,
  qkv_pairs: u32, // qkv_dim / 2: the pair stride between tokens
}

@group(0) @binding(0) var<storage, read> freq: array<vec2u>;
@group(0) @binding(1) var<storage, read_write> qkv: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> key_cache: array<u32>;
@group(0) @binding(3) var<storage, read_write> value_cache: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> step: Step;

// High 32 bits of the 64-bit product a * b, from 16-bit halves (WGSL has no 64-bit integers).
fn mul_hi(a: u32, b: u32) -> u32 {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
}

// (sin, cos) of the angle turn * 2 pi / 2^32 to about 1e-7: the nearest quarter turn is taken exactly from the
// integer, and Taylor polynomials (truncation below 2e-9 on [-pi/4, pi/4]) give the rest.
fn sin_cos_turn(turn: u32) -> vec2f {
  let quadrant = (turn + 0x20000000u) >> 30u;
  let x = f32(bitcast<i32>(turn - (quadrant << 30u))) * 1.4629180792671596e-9; // 2 pi / 2^32
  let x2 = x * x;
  let s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0)))));
  let c = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 + x2 * (-1.0 / 3628800.0)))));
  switch (quadrant & 3u) {
    case 0u: {
      return vec2f(s, c);
    }
    case 1u: {
      return vec2f(c, -s);
    }
    case 2u: {
      return vec2f(-s, -c);
    }
    default: {
      return vec2f(-c, s);
    }
  }
}

// Pair i of the cache row at position p (p < max_seq_len, checked by the caller).
fn store_key(p: u32, i: u32, x: vec2f) {
  let pairs = params.n_kv_heads * params.half_dim;
  if (F16_CACHE) {
    key_cache[p * pairs + i] = pack2x16float(x);
  } else {
    let w = 2u * (p * pairs + i);
    key_cache[w] = bitcast<u32>(x.x);
    key_cache[w + 1u] = bitcast<u32>(x.y);
  }
}

fn store_value(p: u32, i: u32, x: vec2f) {
  let pairs = params.n_kv_heads * params.half_dim;
  if (F16_CACHE) {
    value_cache[p * pairs + i] = pack2x16float(x);
  } else {
    let w = 2u * (p * pairs + i);
    value_cache[w] = bitcast<u32>(x.x);
    value_cache[w + 1u] = bitcast<u32>(x.y);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let q_pairs = params.n_heads * params.half_dim;
  let k_pairs = params.n_kv_heads * params.half_dim;
  let pair = gid.x;
  let t = gid.y;
  let p = step.pos + t;
  if (pair >= q_pairs + 2u * k_pairs) {
    return;
  }
  // The token's row: q pairs, then k pairs, then v pairs, so `pair` indexes it directly.
  let row = t * params.qkv_pairs;
  if (pair >= q_pairs + k_pairs) {
    if (p < params.max_seq_len) {
      store_value(p, pair - q_pairs - k_pairs, qkv[row + pair]);
    }
    return;
  }
  let f = freq[pair % params.half_dim];
  // Top 32 bits of the fraction of a turn, (p * f) mod 2^64 >> 32.
  let turn = p * f.x + mul_hi(p, f.y);
  let sc = sin_cos_turn(turn);
  let s = sc.x;
  let c = sc.y;
  let x = qkv[row + pair];
  let rotated = vec2f(x.x * c - x.y * s, x.x * s + x.y * c);
  if (pair < q_pairs) {
    qkv[row + pair] = rotated;
  } else if (p < params.max_seq_len) {
    store_key(p, pair - q_pairs, rotated);
  }
}
