/**
 * The one place that imports WGSL. Every file in shaders/ is bundled as a string keyed by its base name
 * ("rmsnorm" for shaders/rmsnorm.wgsl).
 */
const files = import.meta.glob('../../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
  string,
  string
>;

const sources = new Map<string, string>();
for (const [path, code] of Object.entries(files)) {
  sources.set(path.slice(path.lastIndexOf('/') + 1, -'.wgsl'.length), code);
}

export function shaderSource(name: string): string {
  const code = sources.get(name);
  if (code === undefined) throw new Error(`no shader named "${name}" in shaders/ (have: ${[...sources.keys()].join(', ')})`);
  return code;
}
