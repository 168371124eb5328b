/**
 * Turns whole envelopes into bytes and back. `binary` serializers get and give Buffers (Redis
 * GETBUFFER); text ones strings, which avoids a Buffer copy for JSON.
 */
export interface Serializer {
  readonly name: string;
  readonly binary: boolean;
  encode(value: unknown): string | Uint8Array;
  decode(payload: string | Buffer): unknown;
}
