export interface ModuleRunner {
  /** Imports the module at the absolute path `file` through Vite's SSR transform. */
  import<T = Record<string, unknown>>(file: string): Promise<T>;
  /** Closes the runner and its Vite server. */
  close(): Promise<void>;
}

/** Starts Vite's module runner over the repository at `root`. */
export function startModuleRunner(root: string): Promise<ModuleRunner>;
