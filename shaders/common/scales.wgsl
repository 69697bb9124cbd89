// The q8/q4/q6k scales of W (w_s) and U (u_s), f16 pairs when SCALE_F16 else f32; appended by src/gpu/shaders.ts to the
// matrix-vector kernels of weights with scales, which declare w_s and u_s.

override SCALE_F16: bool = true;

// Word i of W's scales, or of U's when `u`.
fn scale_word(i: u32, u: bool) -> u32 {
  if (u) {
    return u_s[i];
  }
  return w_s[i];
}

fn scale_at(i: u32, u: bool) -> f32 {
  if (SCALE_F16) {
    let pair = unpack2x16float(scale_word(i >> 1u, u));
    return select(pair.x, pair.y, (i & 1u) == 1u);
  }
  return bitcast<f32>(scale_word(i, u));
}
