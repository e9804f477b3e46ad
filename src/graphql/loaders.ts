import DataLoader from "dataloader";

/**
 * A DataLoader per request, made on first use: every `load(scope, key)` of one request (`scope` is
 * its context object) in the same tick goes to `batch` as one call, so `posts { author { … } }`
 * costs one query instead of one per post. Nothing is cached between loads: a mutation earlier in
 * the same operation is never hidden by an older answer. An Error in `batch`'s answer fails only
 * the load of its key.
 */
export function requestBatcher<K, V>(
  batch: (keys: readonly K[]) => Promise<Array<V | Error>>,
): (scope: object, key: K) => Promise<V> {
  const loaders = new WeakMap<object, DataLoader<K, V>>();
  return (scope, key) => {
    let loader = loaders.get(scope);
    if (loader === undefined) {
      loader = new DataLoader(batch, { cache: false });
      loaders.set(scope, loader);
    }
    return loader.load(key);
  };
}

/** Puts `items` in the order of `keys`, using `keyOf` to match them; `missing` where none matches. */
export function inKeyOrder<K, T, M>(
  keys: readonly K[],
  items: readonly T[],
  keyOf: (item: T) => K,
  missing: M,
): Array<T | M> {
  const byKey = new Map(items.map((item) => [keyOf(item), item] as const));
  return keys.map((key) => byKey.get(key) ?? missing);
}
