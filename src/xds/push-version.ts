// How a client knows it holds a whole push (see the ADS server's invariants): every response
// of a push carries the push id as system_version_info, and a response that is not the last
// of its type's push carries the id with PARTIAL_VERSION_SUFFIX. A proxy applies what it holds
// only when every type it subscribed to has received the last response of the same push —
// never the Address of one config with the Authorization of another.
//
// A server that does not use push ids (system_version_info not starting with PUSH_ID_PREFIX)
// is served as before: every type's first response, then each update, applies.

export const PUSH_ID_PREFIX = 'push:';
export const PARTIAL_VERSION_SUFFIX = '#partial';

export function pushId(configVersion: number | string): string {
  return `${PUSH_ID_PREFIX}${configVersion}`;
}

export interface TypePushState {
  /** The type has received its first response. */
  synced: boolean;
  /** system_version_info of its last response. */
  lastVersion: string;
}

/** Whether what the client holds is one whole push of every type (pure). */
export function holdsWholePush(types: readonly TypePushState[]): boolean {
  if (types.some((t) => !t.synced)) return false;
  if (types.some((t) => t.lastVersion.endsWith(PARTIAL_VERSION_SUFFIX))) return false;
  const ids = types.map((t) => t.lastVersion).filter((v) => v.startsWith(PUSH_ID_PREFIX));
  if (ids.length === 0) return true;
  return ids.length === types.length && ids.every((v) => v === ids[0]);
}
