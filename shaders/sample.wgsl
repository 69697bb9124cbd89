// sample: draws the next token id from the last token's logits on the GPU and stores it where the next step's
// embedding reads it, so decoding continues without a readback.
//
//   z_i = logits_i + bias_i; with `masked`, tokens whose bit in mask is 0 are never chosen (structured output)
//   if count_i > 0:  z_i = (z_i > 0 ? z_i / repetition_penalty : z_i * repetition_penalty)
//                    z_i -= count_i * frequency_penalty + presence_penalty
//   temperature == 0:  id = argmax_i z_i (ties to the lowest id)
//   otherwise, with z_i /= temperature and M = max_i z_i, keep the tokens that pass every enabled filter:
//     top-k: the k largest z (ties at the k-th value to the lowest ids);
//     top-p: of those, every token whose z is at least the largest value v with
//            sum_{kept, z_j >= v} e^(z_j - M) >= top_p * sum_{kept} e^(z_j - M);
//     min-p: e^(z_i - M) >= min_p;
//   and draw id = argmax_{kept} z_i + g_i with Gumbel noise g_i = -log(-log(u_i)), u_i a hash of (seed, i):
//   an exact draw from softmax(z) restricted to the kept tokens, needing only a max-reduction.
//   tokens[out_index] = id;  counts[id] += 1.
// Thresholds are found by bisection over the order-preserving u32 key of z (each probe one parallel count or sum).
// The probes run over the candidates z >= M - span, gathered into workgroup memory (at most CAP, span the widest of
// 1/2, 1, ..., 64 that fits), whenever the threshold provably lies among them (k <= candidates for top-k, the
// candidates hold top_p of the mass for top-p); otherwise over the whole vocabulary.
//
// Shapes: logits [vocab] f32; bias [vocab] f32; counts [vocab] u32; work [vocab] f32 (scratch: z); tokens [*] u32;
// mask [ceil(vocab / 32)] u32, bit (i & 31) of word i / 32 set for an allowed id (read only when masked).
// Dispatch: (1, 1, 1) workgroup of WG threads (WG a power of two); thread t owns ids t, t + WG, ... in every phase,
// so each thread only reads back the scratch values it wrote.

override WG: u32 = 256u;

struct Params {
  vocab_size: u32,
  top_k: u32, // 0 or >= vocab_size: off
  temperature: f32, // 0: argmax
  top_p: f32, // >= 1: off
  min_p: f32, // <= 0: off
  repetition_penalty: f32, // 1: off
  frequency_penalty: f32,
  presence_penalty: f32,
  masked: u32, // 0: every id allowed; else only ids whose mask bit is set
}

struct Target {
  out_index: u32,
}

struct Step {
  pos: u32,
  n_tokens: u32,
  seed: u32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> work: array<f32>;
@group(0) @binding(4) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<uniform> dest: Target;
@group(0) @binding(7) var<uniform> step: Step;
@group(0) @binding(8) var<storage, read> mask: array<u32>;

// A masked-out id: its z, below any real value and any bias, so it is never kept or drawn.
fn banned(i: u32) -> bool {
  return params.masked != 0u && (mask[i >> 5u] & (1u << (i & 31u))) == 0u;
}

// No id / the score of "no id" in reductions (below any real value).
const NONE: u32 = 0xffffffffu;
const NO_SCORE: f32 = -3.4e38;

// Candidates for the bisections, in (thread, id) order so the sums are reproducible.
const CAP: u32 = 960u;
const N_SPANS: u32 = 8u;

var<workgroup> cand_z: array<f32, CAP>;
var<workgroup> cand_i: array<u32, CAP>;
var<workgroup> red_f: array<f32, WG>;
var<workgroup> red_u: array<u32, WG>;
var<workgroup> out_f: f32;
var<workgroup> out_u: u32;

// Order-preserving map of an f32 to a u32: a < b as floats iff key(a) < key(b).
fn key(f: f32) -> u32 {
  let b = bitcast<u32>(f);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// PCG hash (Jarzynski and Olano, "Hash Functions for GPU Rendering").
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Workgroup sum of one f32 per thread; every thread gets the total.
fn sum_f32(v: f32, lid: u32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red_f[lid] += red_f[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out_f = red_f[0];
  }
  return workgroupUniformLoad(&out_f);
}

fn sum_u32(v: u32, lid: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red_u[lid] += red_u[lid + stride];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out_u = red_u[0];
  }
  return workgroupUniformLoad(&out_u);
}

fn min_u32(v: u32, lid: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red_u[lid] = min(red_u[lid], red_u[lid + stride]);
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out_u = red_u[0];
  }
  return workgroupUniformLoad(&out_u);
}

// Workgroup argmax of (value, id) pairs, ties to the lowest id; every thread gets the id (the value is in out_f).
fn argmax(v: f32, id: u32, lid: u32) -> u32 {
  red_f[lid] = v;
  red_u[lid] = id;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let ov = red_f[lid + stride];
      let oi = red_u[lid + stride];
      if (ov > red_f[lid] || (ov == red_f[lid] && oi < red_u[lid])) {
        red_f[lid] = ov;
        red_u[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out_f = red_f[0];
    out_u = red_u[0];
  }
  return workgroupUniformLoad(&out_u);
}

// Number of ids with key(z) >= k (among the n_cand candidates when n_cand > 0).
fn count_at_least(k: u32, n_cand: u32, lid: u32) -> u32 {
  var c = 0u;
  if (n_cand > 0u) {
    for (var j = lid; j < n_cand; j += WG) {
      c += u32(key(cand_z[j]) >= k);
    }
  } else {
    for (var i = lid; i < params.vocab_size; i += WG) {
      c += u32(key(work[i]) >= k);
    }
  }
  return sum_u32(c, lid);
}

// Number of ids <= last with key(z) == k (among the n_cand candidates when n_cand > 0).
fn count_equal_upto(k: u32, last: u32, n_cand: u32, lid: u32) -> u32 {
  var c = 0u;
  if (n_cand > 0u) {
    for (var j = lid; j < n_cand; j += WG) {
      c += u32(key(cand_z[j]) == k && cand_i[j] <= last);
    }
  } else {
    for (var i = lid; i <= last && i < params.vocab_size; i += WG) {
      c += u32(key(work[i]) == k);
    }
  }
  return sum_u32(c, lid);
}

// Kept by top-k: above the k-th key, or at it with an id no larger than tie_last.
fn in_top_k(i: u32, kz: u32, k_min: u32, tie_last: u32) -> bool {
  return kz > k_min || (kz == k_min && i <= tie_last);
}

// Softmax mass e^(z - m) of the top-k tokens with key >= k (among the n_cand candidates when n_cand > 0).
fn mass_at_least(k: u32, m: f32, k_min: u32, tie_last: u32, n_cand: u32, lid: u32) -> f32 {
  var s = 0.0;
  if (n_cand > 0u) {
    for (var j = lid; j < n_cand; j += WG) {
      let z = cand_z[j];
      let kz = key(z);
      if (kz >= k && in_top_k(cand_i[j], kz, k_min, tie_last)) {
        s += exp(z - m);
      }
    }
  } else {
    for (var i = lid; i < params.vocab_size; i += WG) {
      let z = work[i];
      let kz = key(z);
      if (kz >= k && in_top_k(i, kz, k_min, tie_last)) {
        s += exp(z - m);
      }
    }
  }
  return sum_f32(s, lid);
}

// Widths of the candidate window below the max, in units of z (natural log of a probability ratio).
fn span(s: u32) -> f32 {
  return 0.5 * f32(1u << s);
}

// Gathers the ids with z >= floor_z into cand_z / cand_i (each thread's ids after those of lower threads);
// `mine` is how many the calling thread holds. Returns how many there are in all.
fn gather(floor_z: f32, mine: u32, lid: u32) -> u32 {
  red_u[lid] = mine;
  workgroupBarrier();
  for (var off = 1u; off < WG; off *= 2u) {
    let add = select(0u, red_u[lid - off], lid >= off);
    workgroupBarrier();
    red_u[lid] += add;
    workgroupBarrier();
  }
  var at = red_u[lid] - mine;
  for (var i = lid; i < params.vocab_size; i += WG) {
    let z = work[i];
    if (z >= floor_z) {
      cand_z[at] = z;
      cand_i[at] = i;
      at += 1u;
    }
  }
  if (lid == WG - 1u) {
    out_u = red_u[lid];
  }
  return workgroupUniformLoad(&out_u);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  let vocab = params.vocab_size;
  let greedy = params.temperature <= 0.0;
  let inv_t = select(1.0 / params.temperature, 1.0, greedy);

  var best = 0.0;
  var best_id = NONE;
  var low = 0xffffffffu;
  for (var i = lid; i < vocab; i += WG) {
    var z = logits[i] + bias[i];
    let c = counts[i];
    if (c > 0u) {
      z = select(z * params.repetition_penalty, z / params.repetition_penalty, z > 0.0);
      z -= f32(c) * params.frequency_penalty + params.presence_penalty;
    }
    z *= inv_t;
    if (banned(i)) {
      work[i] = NO_SCORE;
      continue;
    }
    work[i] = z;
    if (best_id == NONE || z > best) {
      best = z;
      best_id = i;
    }
    low = min(low, key(z));
  }
  var chosen = argmax(select(NO_SCORE, best, best_id != NONE), best_id, lid);

  if (!greedy) {
    let m = workgroupUniformLoad(&out_f);
    let high = key(m);
    let lowest = min_u32(low, lid);

    // The widest window below m that fits the candidate buffer (none: n_cand stays 0, probes scan everything).
    var counts_by_span: array<u32, N_SPANS>;
    for (var i = lid; i < vocab; i += WG) {
      let below = m - work[i];
      for (var s = 0u; s < N_SPANS; s++) {
        counts_by_span[s] += u32(below <= span(s));
      }
    }
    var chosen_span = N_SPANS;
    for (var s = 0u; s < N_SPANS; s++) {
      if (sum_u32(counts_by_span[s], lid) <= CAP) {
        chosen_span = s;
      }
    }
    var all_cand = 0u;
    var floor_z = 0.0;
    if (chosen_span < N_SPANS) {
      floor_z = m - span(chosen_span);
      var mine = 0u;
      for (var i = lid; i < vocab; i += WG) {
        mine += u32(work[i] >= floor_z);
      }
      all_cand = gather(floor_z, mine, lid);
    }

    // top-k: the largest key k_min with at least k ids at or above it, then the lowest ids among ties at k_min.
    var k_min = 0u;
    var tie_last = NONE;
    let k = params.top_k;
    let k_on = k > 0u && k < vocab;
    var k_cand = 0u; // candidates hold the k-th largest
    if (k_on && all_cand >= k) {
      k_cand = all_cand;
    }
    if (k_on) {
      var lo = select(lowest, key(floor_z), k_cand > 0u);
      var hi = high;
      while (lo < hi) {
        let mid = lo + (hi - lo + 1u) / 2u;
        if (count_at_least(mid, k_cand, lid) >= k) {
          lo = mid;
        } else {
          hi = mid - 1u;
        }
      }
      k_min = lo;
      var above = 0u;
      if (k_min != 0xffffffffu) {
        above = count_at_least(k_min + 1u, k_cand, lid);
      }
      let need = k - above;
      if (count_equal_upto(k_min, vocab - 1u, k_cand, lid) > need) {
        var a = 0u;
        var b = vocab - 1u;
        while (a < b) {
          let mid = (a + b) / 2u;
          if (count_equal_upto(k_min, mid, k_cand, lid) >= need) {
            b = mid;
          } else {
            a = mid + 1u;
          }
        }
        tie_last = a;
      }
    }

    // top-p: the largest key p_min whose top-k tokens at or above it hold top_p of their mass.
    var p_min = 0u;
    if (params.top_p < 1.0) {
      // With top-k decided among the candidates, its whole mass is there.
      let wanted = params.top_p * mass_at_least(0u, m, k_min, tie_last, k_cand, lid);
      var p_cand = 0u;
      if (all_cand > 0u && mass_at_least(key(floor_z), m, k_min, tie_last, all_cand, lid) >= wanted) {
        p_cand = all_cand;
      }
      var lo = max(select(lowest, key(floor_z), p_cand > 0u), k_min);
      var hi = high;
      while (lo < hi) {
        let mid = lo + (hi - lo + 1u) / 2u;
        if (mass_at_least(mid, m, k_min, tie_last, p_cand, lid) >= wanted) {
          lo = mid;
        } else {
          hi = mid - 1u;
        }
      }
      p_min = lo;
    }

    // Gumbel-max draw over the kept tokens.
    let seed = pcg(step.seed);
    var g_best = 0.0;
    var g_id = NONE;
    for (var i = lid; i < vocab; i += WG) {
      let z = work[i];
      let kz = key(z);
      let kept = z != NO_SCORE && in_top_k(i, kz, k_min, tie_last) && kz >= p_min && (params.min_p <= 0.0 || exp(z - m) >= params.min_p);
      if (kept) {
        let u = (f32(pcg(pcg(i) ^ seed) >> 8u) + 0.5) * (1.0 / 16777216.0); // in (0, 1)
        let score = z - log(-log(u));
        if (g_id == NONE || score > g_best) {
          g_best = score;
          g_id = i;
        }
      }
    }
    chosen = argmax(select(NO_SCORE, g_best, g_id != NONE), g_id, lid);
  }

  if (lid == 0u) {
    tokens[dest.out_index] = chosen;
    counts[chosen] += 1u;
  }
}
