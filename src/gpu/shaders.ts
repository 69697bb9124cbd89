/**
 * The one place that imports WGSL. Every file in shaders/ is bundled as a string keyed by its base name
 * ("rmsnorm" for shaders/rmsnorm.wgsl). A few ops share whole files from shaders/common/, appended to the op's own
 * file in the order PRELUDES lists them: no conditionals, no placeholders, variants go through `override`. A prelude
 * may call a function the op's file defines (the matvec, lanes and embedding kernels' entry points are preludes).
 */
const files = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const common = import.meta.glob('../../shaders/common/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length);
const sources = new Map(Object.entries(files).map(([path, code]) => [baseName(path), code]));
const shared = new Map(Object.entries(common).map(([path, code]) => [baseName(path), code]));

/** The shaders/common/ files each op's shader is completed with. */
const PRELUDES: Record<string, string[]> = {
  matvec_f32: ['linear', 'matvec_floats', 'matvec'],
  matvec_f16: ['linear', 'matvec_floats', 'matvec'],
  matvec_q8: ['linear', 'matvec_scaled', 'scales', 'matvec_groups', 'matvec'],
  matvec_q4: ['linear', 'matvec_scaled', 'scales', 'matvec_groups', 'matvec'],
  matvec_q45k: ['linear', 'kquants', 'matvec_kparts', 'matvec'],
  matvec_q6k: ['linear', 'matvec_scaled', 'scales', 'kquants', 'matvec_kparts', 'matvec'],
  matmul_lanes_q4: ['linear', 'lanes_scaled', 'scales', 'lanes'],
  matmul_lanes_q45k: ['linear', 'kquants', 'lanes'],
  matmul_lanes_q6k: ['linear', 'lanes_scaled', 'scales', 'kquants', 'lanes'],
  matmul: ['kquants'],
  embedding: ['gather'],
  embedding_q: ['kquants', 'gather'],
  attention: ['step'],
  attention_merge: ['step'],
  rope: ['step'],
};

export function shaderSource(name: string): string {
  const code = sources.get(name);
  if (code === undefined) throw new Error(`no shader named "${name}" in shaders/ (have: ${[...sources.keys()].join(', ')})`);
  const parts = (PRELUDES[name] ?? []).map((p) => {
    const c = shared.get(p);
    if (c === undefined) throw new Error(`shader ${name} lists shaders/common/${p}.wgsl, which does not exist`);
    return c;
  });
  return [code, ...parts].join('\n');
}
