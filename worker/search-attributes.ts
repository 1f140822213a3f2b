import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';

const { IndexedValueType } = proto.temporal.api.enums.v1;

/**
 * Registers devflow's search attributes on the namespace when missing. The local dev server
 * gets them as start flags already; this covers a Temporal server found at TEMPORAL_ADDRESS.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set([...Object.keys(existing.customAttributes ?? {}), ...Object.keys(existing.systemAttributes ?? {})]);
  const missing = SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((key) => [key.name, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  return missing.map((key) => key.name);
}
