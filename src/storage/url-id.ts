/**
 * The model id a URL is imported under, and Hugging Face page links as the URLs that serve files: small and free
 * of converter code, so the page can name the id (and ask before replacing a model) without loading the importer.
 */
import { modelIdFrom } from './package-check.ts';

/**
 * The id importFromUrl installs `url` under when no id is given: a file's name without its extension, a folder's
 * name, or a Hugging Face repository's name (not the "main" of its /resolve/main/ folder).
 */
export function importModelId(url: string): string {
  const u = new URL(url, (globalThis as { location?: Location }).location?.href);
  const parts = u.pathname.split('/').filter(Boolean);
  const hfFolder = u.hostname === 'huggingface.co' && (parts.length === 2 || parts[2] === 'tree');
  const label = hfFolder ? parts[1] : (parts.filter((p) => p !== 'manifest.json').pop() ?? 'model');
  return modelIdFrom(label.replace(/\.(gguf|bin|safetensors)$/i, ''));
}

/** https://huggingface.co/<org>/<repo>[/tree/<rev>[/dir]] and /blob/ links, as the /resolve/ URLs that serve files. */
export function huggingFaceResolve(u: URL): URL {
  if (u.hostname !== 'huggingface.co') return u;
  const parts = u.pathname.split('/').filter(Boolean);
  if (parts.length === 2) return new URL(`/${parts[0]}/${parts[1]}/resolve/main/`, u);
  if (parts.length >= 4 && (parts[2] === 'tree' || parts[2] === 'blob')) {
    const rest = parts.slice(3).join('/');
    return new URL(`/${parts[0]}/${parts[1]}/resolve/${rest}${parts[2] === 'tree' ? '/' : ''}`, u);
  }
  return u;
}
