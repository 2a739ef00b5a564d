/**
 * A set over a list that a reload may replace: rebuilt only when the list object changes
 * (a reload swaps the array), so the per-request cost stays one identity comparison.
 */
export function liveSet(list: readonly string[] | (() => readonly string[])): () => ReadonlySet<string> {
  const read = typeof list === 'function' ? list : () => list;
  let source: readonly string[] | undefined;
  let set: ReadonlySet<string> = new Set();
  return () => {
    const current = read();
    if (current !== source) {
      source = current;
      set = new Set(current);
    }
    return set;
  };
}
