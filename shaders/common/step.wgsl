// The per-step uniform every position-dependent op reads (src/gpu/ops/step.ts writes it): the step's first position,
// its token count and the sampler's seed.
struct Step {
  pos: u32,
  n_tokens: u32,
  seed: u32,
  _pad: u32,
}
