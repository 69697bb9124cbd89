// matmul: Y[t, row_offset + r] (+)= sum_c W[r, c] * X[t, c] for the rows r of one chunk of a weight (prefill).
//
// Shapes: X [n, cols] f32; w_q, w_s: the chunk's [rows, cols] weight in the encoding chosen by DTYPE
// (0 f32, 1 f16, 2 q8, 3 q4, 4 q4k, 5 q5k, 6 q6k; shaders/README.md; w_s is unused for f32/f16/q4k/q5k and bound to a
// 4-byte placeholder; the k-quants' block arithmetic is in shaders/common/kquants.wgsl, appended by src/gpu/shaders.ts),
// scales f16 pairs when SCALE_F16, else f32; Y [n, y_stride] f32.
// Dispatch: (ceil(rows / 32) + (n - 1) % 32, ceil(n / 32)) workgroups of 64 threads; a workgroup computes a
// 32-token x 32-row tile of Y. The token count n changes per step while params are fixed at bind time, so n rides
// in the dispatch size: the (n - 1) % 32 workgroups past the row tiles do nothing but tell the others n. Per step of 32 columns (one quantization group) it stages the X tile and the dequantized W tile in
// workgroup memory; thread (tx, ty) then accumulates tokens ty + 8a and rows tx + 8b (a, b < 4).

override DTYPE: u32 = 3u;
override SCALE_F16: bool = true;
const TILE: u32 = 32u;
const WG: u32 = 64u;

struct Params {
  rows: u32,
  cols: u32,
  row_offset: u32,
  y_stride: u32,
  mode: u32, // 0 store, 1 add, 2 SwiGLU gate (combine)
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w_q: array<u32>;
@group(0) @binding(2) var<storage, read> w_s: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// [TILE][TILE + 1]: the extra column keeps column reads off a single memory bank.
var<workgroup> xs: array<f32, TILE * (TILE + 1u)>;
var<workgroup> ws: array<f32, TILE * (TILE + 1u)>;

// y[i]'s new value from the row's result v, by params.mode: 0 v; 1 y[i] + v (the residual stream); 2 silu(y[i]) * v
// (the SwiGLU gate: y holds W1 x, this weight is W3). silu through exp(-|g|), which never overflows.
fn combine(old: f32, v: f32) -> f32 {
  if (params.mode == 2u) {
    let e = exp(-abs(old));
    return old * select(e / (1.0 + e), 1.0 / (1.0 + e), old >= 0.0) * v;
  }
  return select(v, old + v, params.mode == 1u);
}

fn scale_at(i: u32) -> f32 {
  if (SCALE_F16) {
    let pair = unpack2x16float(w_s[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(w_s[i]);
}

fn half_at(e: u32) -> f32 {
  let pair = unpack2x16float(w_q[e >> 1u]);
  return select(pair.x, pair.y, (e & 1u) == 1u);
}

// Values 4w .. 4w + 3 of group j (32 values) of k-quant block blk: sub-block j (q4k, q5k), run j % 4 of half j / 4
// (q6k).
fn k_quad(blk: u32, j: u32, w: u32) -> vec4f {
  if (DTYPE == 6u) {
    let o = 52u * blk;
    let h = j / 4u;
    let r = j % 4u;
    let s = vec2u(w_q[o + 48u + 2u * h], w_q[o + 49u + 2u * h]);
    return scale_at(blk) * k6_scale(s, r, w / 4u) * k6_values(w_q[o + 16u * h + 8u * (r & 1u) + w], w_q[o + 32u + 8u * h + w], r);
  }
  let size = select(36u, 44u, DTYPE == 5u);
  let o = size * blk;
  let sm = k4_scale_min(vec4u(w_q[o], w_q[o + 1u], w_q[o + 2u], w_q[o + 3u]), j);
  var q = k_nibbles(w_q[o + size - 32u + 8u * (j / 2u) + w], (j & 1u) == 1u);
  if (DTYPE == 5u) {
    q += k5_high(w_q[o + 4u + w], j);
  }
  return sm.x * q - sm.y;
}

// Stages W[row0 .. row0 + 31, k0 .. k0 + 31] in ws (rows past the chunk repeat its last row; columns past cols
// are zero: quantized rows are padded with zeros, float rows are masked).
fn load_w(t: u32, row0: u32, g: u32) {
  let cols = params.cols;
  let last = params.rows - 1u;
  let groups = (cols + 31u) / 32u;
  if (DTYPE == 3u) {
    // 32 rows x 4 words; word j of a group holds elements 8j..8j+7.
    for (var i = t; i < TILE * 4u; i += WG) {
      let rr = i / 4u;
      let j = i % 4u;
      let row = min(row0 + rr, last);
      let q = w_q[(row * groups + g) * 4u + j];
      let s = scale_at(row * groups + g);
      let lo = (vec4f((vec4u(q) >> vec4u(0u, 4u, 8u, 12u)) & vec4u(15u)) - 8.0) * s;
      let hi = (vec4f((vec4u(q) >> vec4u(16u, 20u, 24u, 28u)) & vec4u(15u)) - 8.0) * s;
      let base = rr * (TILE + 1u) + 8u * j;
      ws[base] = lo.x;
      ws[base + 1u] = lo.y;
      ws[base + 2u] = lo.z;
      ws[base + 3u] = lo.w;
      ws[base + 4u] = hi.x;
      ws[base + 5u] = hi.y;
      ws[base + 6u] = hi.z;
      ws[base + 7u] = hi.w;
    }
  } else if (DTYPE >= 4u) {
    // k-quants (cols a multiple of 256): group g is group g % 8 of block g / 8; 32 rows x 8 words of 4 values.
    let blocks = cols / 256u;
    for (var i = t; i < TILE * 8u; i += WG) {
      let rr = i / 8u;
      let w = i % 8u;
      let row = min(row0 + rr, last);
      let v = k_quad(row * blocks + g / 8u, g % 8u, w);
      let base = rr * (TILE + 1u) + 4u * w;
      ws[base] = v.x;
      ws[base + 1u] = v.y;
      ws[base + 2u] = v.z;
      ws[base + 3u] = v.w;
    }
  } else if (DTYPE == 2u) {
    // 32 rows x 8 words; word j of a group holds elements 4j..4j+3.
    for (var i = t; i < TILE * 8u; i += WG) {
      let rr = i / 8u;
      let j = i % 8u;
      let row = min(row0 + rr, last);
      let q = w_q[(row * groups + g) * 8u + j];
      let v = vec4f(bitcast<vec4i>(vec4u(q) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u)) * scale_at(row * groups + g);
      let base = rr * (TILE + 1u) + 4u * j;
      ws[base] = v.x;
      ws[base + 1u] = v.y;
      ws[base + 2u] = v.z;
      ws[base + 3u] = v.w;
    }
  } else {
    for (var i = t; i < TILE * TILE; i += WG) {
      let rr = i / TILE;
      let kk = i % TILE;
      let row = min(row0 + rr, last);
      let c = g * TILE + kk;
      let e = row * cols + min(c, cols - 1u);
      var v: f32;
      if (DTYPE == 1u) {
        v = half_at(e);
      } else {
        v = bitcast<f32>(w_q[e]);
      }
      ws[rr * (TILE + 1u) + kk] = select(0.0, v, c < cols);
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let row_tiles = (params.rows + TILE - 1u) / TILE;
  if (wg.x >= row_tiles) {
    return;
  }
  let n = (nwg.y - 1u) * TILE + (nwg.x - row_tiles) + 1u;
  let cols = params.cols;
  let row0 = wg.x * TILE;
  let tok0 = wg.y * TILE;
  let tx = t % 8u;
  let ty = t / 8u;
  var acc: array<vec4f, 4>; // acc[a][b]: token ty + 8a, row tx + 8b
  let groups = (cols + 31u) / 32u;
  for (var g = 0u; g < groups; g++) {
    for (var i = t; i < TILE * TILE; i += WG) {
      let tt = i / TILE;
      let kk = i % TILE;
      let tok = tok0 + tt;
      let c = g * TILE + kk;
      let inside = tok < n && c < cols;
      xs[tt * (TILE + 1u) + kk] = select(0.0, x[min(tok, n - 1u) * cols + min(c, cols - 1u)], inside);
    }
    load_w(t, row0, g);
    workgroupBarrier();
    for (var k = 0u; k < TILE; k++) {
      let wv = vec4f(ws[tx * (TILE + 1u) + k], ws[(tx + 8u) * (TILE + 1u) + k], ws[(tx + 16u) * (TILE + 1u) + k], ws[(tx + 24u) * (TILE + 1u) + k]);
      acc[0] += xs[ty * (TILE + 1u) + k] * wv;
      acc[1] += xs[(ty + 8u) * (TILE + 1u) + k] * wv;
      acc[2] += xs[(ty + 16u) * (TILE + 1u) + k] * wv;
      acc[3] += xs[(ty + 24u) * (TILE + 1u) + k] * wv;
    }
    workgroupBarrier();
  }
  for (var a = 0u; a < 4u; a++) {
    let tok = tok0 + ty + 8u * a;
    for (var b = 0u; b < 4u; b++) {
      let r = row0 + tx + 8u * b;
      if (tok < n && r < params.rows) {
        let i = tok * params.y_stride + params.row_offset + r;
        let v = acc[a][b];
        y[i] = combine(y[i], v);
      }
    }
  }
}
