// String order by UTF-16 code units (what `<` does): the order Go's and Envoy's byte-wise
// comparisons give for the ASCII names Kubernetes allows, so Gateway API's "alphabetical by
// {namespace}/{name}" matches Istio. Unlike localeCompare it does not touch ICU's collation
// data, which costs a proxy about 3 MB of resident memory the first time it is used.
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
