// ggml's k-quant super-blocks of 256 values as a model package keeps them (shaders/README.md, src/formats/kquant.ts):
// the arithmetic on their words, shared by the kernels that read q4k, q5k and q6k weights, which load the words
// from their own bindings. Appended by src/gpu/shaders.ts.
//
// q4k block (36 words): word 0 d | dmin (f16 pair), words 1..3 scales[12], words 4..35 qs[128]. q5k (44 words):
// the same header, words 4..11 qh[32], words 12..43 qs. Sub-block j (0..7) is values 32j .. 32j + 31: value
// 32j + l is nibble (j & 1) (low, high) of qs byte 32 (j / 2) + l, plus (q5k) 16 * bit j of qh byte l;
// x = d * sc_j * q - dmin * m_j.
// q6k block (52 words, d in w_s): words 0..31 ql[128], 32..47 qh[64], 48..51 int8 scales[16]. Half h (values
// 128h ..) and run r (0..3): value 128h + 32r + l is nibble (r / 2) of ql byte 64h + 32 (r % 2) + l with bits
// 2r, 2r + 1 of qh byte 32h + l above it, minus 32, times d * scales[8h + 2r + l / 16].

// (d * sc_j, dmin * m_j) of sub-block j from a q4k/q5k header h (words 0..3): scales bytes 0..3 hold sc_0..3 and
// bytes 4..7 m_0..3 in their low 6 bits; bytes 8..11 the low 4 bits of sc_4..7 (low nibble) and m_4..7 (high),
// whose top 2 bits are the top bits of bytes 0..3 (sc) and 4..7 (m).
fn k4_scale_min(h: vec4u, j: u32) -> vec2f {
  let lo = j < 4u;
  let sc = select((h.w & 0x0f0f0f0fu) | ((h.y >> 2u) & 0x30303030u), h.y & 0x3f3f3f3fu, lo);
  let m = select(((h.w >> 4u) & 0x0f0f0f0fu) | ((h.z >> 2u) & 0x30303030u), h.z & 0x3f3f3f3fu, lo);
  let shift = 8u * (j & 3u);
  return unpack2x16float(h.x) * vec2f(f32((sc >> shift) & 0xffu), f32((m >> shift) & 0xffu));
}

// Nibble `high` of each byte of a qs word: values 4w .. 4w + 3 of a sub-block.
fn k_nibbles(q: u32, high: bool) -> vec4f {
  return vec4f((vec4u(q) >> (vec4u(0u, 8u, 16u, 24u) + select(0u, 4u, high))) & vec4u(15u));
}

// q5k: 16 * bit j of each byte of a qh word (the fifth bits of values 4w .. 4w + 3 of sub-block j).
fn k5_high(qh: u32, j: u32) -> vec4f {
  return vec4f(((vec4u(qh) >> (vec4u(0u, 8u, 16u, 24u) + j)) & vec4u(1u)) << vec4u(4u));
}

// q6k: q - 32 of the 4 values of run r held by a ql word and a qh word.
fn k6_values(ql: u32, qh: u32, r: u32) -> vec4f {
  let shifts = vec4u(0u, 8u, 16u, 24u);
  let q = ((vec4u(ql) >> (shifts + 4u * (r >> 1u))) & vec4u(15u)) | (((vec4u(qh) >> (shifts + 2u * r)) & vec4u(3u)) << vec4u(4u));
  return vec4f(q) - 32.0;
}

// q6k: the int8 scale of run r (0..3), sixteen-value part i (0, 1) of a half, from that half's 2 scale words.
fn k6_scale(s: vec2u, r: u32, i: u32) -> f32 {
  let b = 2u * r + i;
  let word = select(s.x, s.y, b >= 4u);
  return f32(bitcast<i32>(word << (24u - 8u * (b & 3u))) >> 24u);
}
