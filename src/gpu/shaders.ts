/**
 * The one place that imports WGSL. Every file in shaders/ is bundled as a string keyed by its base name
 * ("rmsnorm" for shaders/rmsnorm.wgsl). A few ops share whole files from shaders/common/, appended to the op's own
 * file in the order PRELUDES lists them: no conditionals, no placeholders, variants go through `override`.
 */
const files = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;
const common = import.meta.glob('../../shaders/common/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length);
const sources = new Map(Object.entries(files).map(([path, code]) => [baseName(path), code]));
const shared = new Map(Object.entries(common).map(([path, code]) => [baseName(path), code]));

/** The shaders/common/ files each op's shader is completed with. */
const PRELUDES: Record<string, string[]> = {
  matvec_f32: ['linear', 'matvec_finish'],
  matvec_f16: ['linear', 'matvec_finish'],
  matvec_q8: ['linear', 'scales', 'matvec_finish'],
  matvec_q4: ['linear', 'scales', 'matvec_finish'],
  matvec_q45k: ['linear', 'kquants', 'matvec_finish'],
  matvec_q6k: ['linear', 'scales', 'kquants', 'matvec_finish'],
  matmul_lanes_q4: ['linear', 'scales', 'lanes'],
  matmul_lanes_q4k: ['linear', 'kquants', 'lanes'],
  matmul_lanes_q6k: ['linear', 'scales', 'kquants', 'lanes'],
  matmul: ['kquants'],
  embedding_q: ['kquants'],
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
