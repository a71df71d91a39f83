// Label selector matching (FencePolicy.spec.nodeSelector against ComputeNode labels).
import type { FencePolicySpec } from '../api/index.js';

type Selector = FencePolicySpec['nodeSelector'];

export function matchesSelector(sel: Selector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  if (!sel) return true;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const vals = e.values ?? [];
    switch (e.operator) {
      case 'In': if (!has || !vals.includes(l[e.key]!)) return false; break;
      case 'NotIn': if (has && vals.includes(l[e.key]!)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
    }
  }
  return true;
}
