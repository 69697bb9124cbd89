// matvec_q8: y[row_offset + r] (+)= sum_c W[r, c] * x[c] for the rows r of one chunk of a q8 weight.
//
// Shapes: x [cols] f32 (bound twice: as vec4s and as scalars); w_q [rows, G, 8] u32 with G = ceil(cols / 32);
// w_s [rows, G] scales (f16 pairs when SCALE_F16, else f32); y [>= row_offset + rows] f32.
// Word w of a row holds elements 4w..4w+3 (element 4w+b in byte b, two's complement), value q * scale.
// Dispatch: ceil(rows / ROWS) workgroups (laid out over x, then y, when past the per-dimension limit) of WG
// threads. Thread t reads words t, t + WG, ... of each of the workgroup's ROWS rows, so neighbouring threads read
// neighbouring words, and loads the matching vec4 of x once for all ROWS rows. The WG partial sums of each row
// are then added through workgroup memory.

override WG: u32 = 64u;
override SCALE_F16: bool = true;
const ROWS: u32 = 4u;

struct Params {
  rows: u32,
  cols: u32,
  row_offset: u32,
  accumulate: u32,
}

@group(0) @binding(0) var<storage, read> x4: array<vec4f>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w_q: array<u32>;
@group(0) @binding(3) var<storage, read> w_s: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> partial: array<vec4f, WG>;

fn scale_at(i: u32) -> f32 {
  if (SCALE_F16) {
    let pair = unpack2x16float(w_s[i >> 1u]);
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(w_s[i]);
}

// The four signed bytes of q, byte b in lane b.
fn bytes_of(q: u32) -> vec4f {
  return vec4f(bitcast<vec4i>(vec4u(q) << vec4u(24u, 16u, 8u, 0u)) >> vec4u(24u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) t: u32) {
  let first = (wg.y * nwg.x + wg.x) * ROWS;
  let cols = params.cols;
  let groups = (cols + 31u) / 32u;
  let words = groups * 8u;
  // Rows past the chunk (the last workgroup) read the last row again and are not written.
  let last = params.rows - 1u;
  let r0 = min(first, last);
  let r1 = min(first + 1u, last);
  let r2 = min(first + 2u, last);
  let r3 = min(first + 3u, last);
  var acc = vec4f(0.0);
  // Words whose 4 x values are all inside x.
  let full = cols / 4u;
  for (var w = t; w < full; w += WG) {
    let xv = x4[w];
    let g = w / 8u;
    acc += vec4f(
      scale_at(r0 * groups + g) * dot(bytes_of(w_q[r0 * words + w]), xv),
      scale_at(r1 * groups + g) * dot(bytes_of(w_q[r1 * words + w]), xv),
      scale_at(r2 * groups + g) * dot(bytes_of(w_q[r2 * words + w]), xv),
      scale_at(r3 * groups + g) * dot(bytes_of(w_q[r3 * words + w]), xv),
    );
  }
  // The word holding the last cols % 4 values (when cols is not a multiple of 4), read one x at a time.
  if (full * 4u < cols && t == full % WG) {
    let c = full * 4u;
    let xv = vec4f(
      x[c],
      select(0.0, x[min(c + 1u, cols - 1u)], c + 1u < cols),
      select(0.0, x[min(c + 2u, cols - 1u)], c + 2u < cols),
      0.0,
    );
    let g = full / 8u;
    acc += vec4f(
      scale_at(r0 * groups + g) * dot(bytes_of(w_q[r0 * words + full]), xv),
      scale_at(r1 * groups + g) * dot(bytes_of(w_q[r1 * words + full]), xv),
      scale_at(r2 * groups + g) * dot(bytes_of(w_q[r2 * words + full]), xv),
      scale_at(r3 * groups + g) * dot(bytes_of(w_q[r3 * words + full]), xv),
    );
  }
  partial[t] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (t < stride) {
      partial[t] += partial[t + stride];
    }
    workgroupBarrier();
  }
  if (t < ROWS && first + t < params.rows) {
    let i = params.row_offset + first + t;
    let sum = partial[0][t];
    y[i] = select(sum, y[i] + sum, params.accumulate != 0u);
  }
}
